package mockas

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const keyID = "key-app"

// assertionFor signs a client assertion with key; change may alter the
// claims first.
func assertionFor(t *testing.T, key *ecdsa.PrivateKey, now time.Time, change func(*jwt.Claims)) string {
	t.Helper()
	c := jwt.Claims{Issuer: keyID, Subject: keyID, Audience: jwt.Audience{asIssuer}, ID: randomID(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if change != nil {
		change(&c)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPrivateKeyJWT: a client registered with a public key authenticates
// with client assertions (RFC 7523) and nothing else; an assertion is
// accepted once, and only with the right signer, iss, sub, aud, exp and
// jti. The other clients cannot use assertions.
func TestPrivateKeyJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newFixture(t, func(c *Config) {
		c.Clients = append(c.Clients, Client{ID: keyID, PublicKey: key.Public(), RedirectURIs: []string{confRedir}})
	}, nil)
	now := f.e.clock.Now()
	form := func(assertion string) url.Values {
		v := ccRequest()
		v.Set("client_assertion_type", assertionType)
		v.Set("client_assertion", assertion)
		return v
	}

	for name, aud := range map[string]string{"the issuer": asIssuer, "the issuer with a slash": asIssuer + "/", "the token endpoint": asIssuer + "/token"} {
		status, b := f.token(t, form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Audience = jwt.Audience{aud} })), "", "")
		if status != http.StatusOK {
			t.Fatalf("aud %s: %d %v", name, status, b)
		}
		if c := checkAccessToken(t, f.e, b["access_token"].(string)); c.Subject != keyID || c.ClientID != keyID {
			t.Errorf("aud %s: sub %q client_id %q, want %q", name, c.Subject, c.ClientID, keyID)
		}
		if ev := lastEvent(f.s, "token"); ev.Detail["auth_method"] != "private_key_jwt" {
			t.Errorf("aud %s: the token event's auth_method is %q", name, ev.Detail["auth_method"])
		}
	}

	used := assertionFor(t, key, now, nil)
	if status, b := f.token(t, form(used), "", ""); status != http.StatusOK {
		t.Fatalf("a fresh assertion: %d %v", status, b)
	}
	for _, tc := range []struct {
		name       string
		v          url.Values
		basic      [2]string
		status     int
		code, desc string
	}{
		{"replayed", form(used), [2]string{}, 401, "invalid_client", "was already used"},
		{"another key", form(assertionFor(t, other, now, nil)), [2]string{}, 401, "invalid_client", "does not verify"},
		{"iss is not the client", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Issuer = "someone" })), [2]string{}, 401, "invalid_client", "has no public key"},
		{"sub is not the client", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Subject = "someone" })), [2]string{}, 401, "invalid_client", "must both be the client id"},
		{"aud names another server", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://idp.example.com"} })), [2]string{}, 401, "invalid_client", "does not name this server"},
		{"expired", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })), [2]string{}, 401, "invalid_client", "expired"},
		{"no exp", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Expiry = nil })), [2]string{}, 401, "invalid_client", "has no exp"},
		{"valid for an hour", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), [2]string{}, 401, "invalid_client", "more than 5m0s from now"},
		{"no jti", form(assertionFor(t, key, now, func(c *jwt.Claims) { c.ID = "" })), [2]string{}, 401, "invalid_client", "has no jti"},
		{"wrong assertion type", func() url.Values {
			v := form(assertionFor(t, key, now, nil))
			v.Set("client_assertion_type", "jwt")
			return v
		}(), [2]string{}, 401, "invalid_client", "is not urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		{"an assertion and a secret", form(assertionFor(t, key, now, nil)), [2]string{keyID, "x"}, 400, "invalid_request", "use one method"},
		{"the key client with a secret", ccRequest(), [2]string{keyID, "x"}, 401, "invalid_client", "must authenticate with private_key_jwt"},
		{"a secret client with an assertion", func() url.Values { v := form(assertionFor(t, key, now, nil)); v.Set("client_id", confID); return v }(), [2]string{}, 401, "invalid_client", `client "conf-app" has no public key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.token(t, tc.v, tc.basic[0], tc.basic[1])
			desc, _ := body["error_description"].(string)
			if status != tc.status || body["error"] != tc.code || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want %d %s containing %q", status, body, tc.status, tc.code, tc.desc)
			}
		})
	}
}

// TestClientKeyFlag: a key travels through -client key= unchanged, and a
// client may not have a secret and a key.
func TestClientKeyFlag(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := ClientKeyFlag(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseClientFlag("id=svc,key=" + k + ",redirect=https://mcp.example.com/cb")
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Errorf("key= parsed to %v", c.PublicKey)
	}
	if _, err := ParseClientFlag("id=svc,key=bm90LWEta2V5,redirect=https://mcp.example.com/cb"); err == nil {
		t.Error("a key= that is not a key was accepted")
	}
	if _, err := New(Config{Issuer: asIssuer, Clients: []Client{{ID: "svc", Secret: "s", PublicKey: key.Public(), RedirectURIs: []string{"https://mcp.example.com/cb"}}}}); err == nil {
		t.Error("a client with a secret and a key was accepted")
	}
}
