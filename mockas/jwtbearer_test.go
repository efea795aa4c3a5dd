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

const workloadIss = "https://oidc.cluster.example.com"

// workloadFixture is a server that trusts workloadIss's key; patch may
// break a check on purpose.
func workloadFixture(t *testing.T, patch func(*Server)) (*fixture, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) {
		c.WorkloadIssuers = []WorkloadIssuer{{Issuer: workloadIss, PublicKey: &key.PublicKey}}
	}, patch)
	return f, key
}

func signWorkload(t *testing.T, key *ecdsa.PrivateKey, c jwt.Claims) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func workloadClaims(now time.Time) jwt.Claims {
	return jwt.Claims{Issuer: workloadIss, Subject: "system:serviceaccount:mcp:mcp-proxy", Audience: jwt.Audience{asIssuer},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
}

func jwtBearerRequest(assertion string) url.Values {
	return url.Values{"grant_type": {grantTypeJWTBearer}, "assertion": {assertion}, "resource": {mcpResource}}
}

// TestJWTBearerGrant issues a token whose subject is the workload's for a
// valid assertion presented without client authentication.
func TestJWTBearerGrant(t *testing.T) {
	f, key := workloadFixture(t, nil)
	now := f.e.clock.Now()
	status, b := f.token(t, jwtBearerRequest(signWorkload(t, key, workloadClaims(now))), "", "")
	if status != http.StatusOK {
		t.Fatalf("got %d %v", status, b)
	}
	if _, ok := b["refresh_token"]; ok {
		t.Errorf("a JWT bearer grant got a refresh token; the workload presents its JWT again")
	}
	c := checkAccessToken(t, f.e, b["access_token"].(string))
	if c.Subject != "system:serviceaccount:mcp:mcp-proxy" || len(c.Audience) != 1 || c.Audience[0] != mcpResource {
		t.Errorf("token sub %q aud %v", c.Subject, c.Audience)
	}
	if g := f.s.Metadata().GrantTypesSupported; !strings.Contains(strings.Join(g, " "), grantTypeJWTBearer) {
		t.Errorf("grant_types_supported %v does not list the JWT bearer grant", g)
	}
}

// TestJWTBearerRefusals: every check refuses its broken assertion with
// invalid_grant and a description that names what was wrong.
func TestJWTBearerRefusals(t *testing.T) {
	f, key := workloadFixture(t, nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := f.e.clock.Now()
	change := func(fn func(*jwt.Claims)) string {
		c := workloadClaims(now)
		fn(&c)
		return signWorkload(t, key, c)
	}
	for _, tc := range []struct{ name, assertion, desc string }{
		{"wrong audience", change(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://wrong.example"} }), `aud ["https://wrong.example"] does not name this server`},
		{"expired", change(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }), "the assertion expired at"},
		{"no exp", change(func(c *jwt.Claims) { c.Expiry = nil }), "has no exp"},
		{"not yet valid", change(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), "not valid before"},
		{"no sub", change(func(c *jwt.Claims) { c.Subject = "" }), "has no sub"},
		{"untrusted issuer", change(func(c *jwt.Claims) { c.Issuer = "https://elsewhere.example" }), `iss "https://elsewhere.example" is not a workload issuer this server trusts`},
		{"foreign key", signWorkload(t, other, workloadClaims(now)), "signature does not verify with the key of " + workloadIss},
		{"not a JWT", "a.b.c", "is not a JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := f.token(t, jwtBearerRequest(tc.assertion), "", "")
			if status != http.StatusBadRequest || b["error"] != "invalid_grant" || !strings.Contains(b["error_description"].(string), tc.desc) {
				t.Errorf("got %d %v, want 400 invalid_grant naming %q", status, b, tc.desc)
			}
		})
	}
	status, b := f.token(t, url.Values{"grant_type": {grantTypeJWTBearer}}, "", "")
	if status != http.StatusBadRequest || b["error"] != "invalid_request" {
		t.Errorf("no assertion: got %d %v", status, b)
	}
}

// TestJWTBearerUntrusted: a server that trusts no workload issuer neither
// advertises nor accepts the grant.
func TestJWTBearerUntrusted(t *testing.T) {
	f := newFixture(t, nil, nil)
	if g := f.s.Metadata().GrantTypesSupported; strings.Contains(strings.Join(g, " "), grantTypeJWTBearer) {
		t.Errorf("grant_types_supported %v lists the JWT bearer grant without a workload issuer", g)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	status, b := f.token(t, jwtBearerRequest(signWorkload(t, key, workloadClaims(f.e.clock.Now()))), "", "")
	if status != http.StatusBadRequest || b["error"] != "invalid_grant" {
		t.Errorf("got %d %v", status, b)
	}
}
