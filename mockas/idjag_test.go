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

// idjagFixture is one server as both the enterprise identity provider and
// the authorization server that trusts it; users may reach it, and the
// ID-JAG names clientID.
func idjagFixture(t *testing.T, users []string, clientID string) (*fixture, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) {
		c.IDJAG = &IDJAGIssuing{Key: key, Access: []IDJAGAccess{{Audience: asIssuer, ClientID: clientID, Users: users}}}
		c.IDJAGIssuers = []WorkloadIssuer{{Issuer: asIssuer, PublicKey: &key.PublicKey}}
	}, nil)
	return f, key
}

// idToken signs alice in as the confidential client and returns her ID token.
func (f *fixture) idToken(t *testing.T) string {
	t.Helper()
	code, verifier := f.code(t, confID, confRedir, nil)
	status, b := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confRedir},
		"code_verifier": {verifier}, "resource": {mcpResource}}, confID, confSecret)
	raw, _ := b["id_token"].(string)
	if status != http.StatusOK || raw == "" {
		t.Fatalf("sign-in: %d %v", status, b)
	}
	return raw
}

func tokenExchange(idToken string) url.Values {
	return url.Values{"grant_type": {grantTypeTokenExchange}, "requested_token_type": {tokenTypeIDJAG},
		"subject_token": {idToken}, "subject_token_type": {tokenTypeIDToken}, "audience": {asIssuer}, "resource": {mcpResource}}
}

// TestIDJAGFlow: an ID token exchanged for an ID-JAG, which the
// authorization server redeems for the user's access token, without a
// refresh token.
func TestIDJAGFlow(t *testing.T) {
	f, _ := idjagFixture(t, []string{"alice"}, confID)
	status, b := f.token(t, tokenExchange(f.idToken(t)), confID, confSecret)
	if status != http.StatusOK || b["issued_token_type"] != tokenTypeIDJAG || b["token_type"] != "N_A" {
		t.Fatalf("exchange: %d %v", status, b)
	}
	jag := b["access_token"].(string)
	parsed, err := jwt.ParseSigned(jag, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || parsed.Headers[0].ExtraHeaders[jose.HeaderType] != typIDJAG {
		t.Fatalf("ID-JAG %v: typ %v", err, parsed.Headers[0].ExtraHeaders)
	}
	status, b = f.token(t, url.Values{"grant_type": {grantTypeJWTBearer}, "assertion": {jag}, "resource": {mcpResource}}, confID, confSecret)
	if status != http.StatusOK {
		t.Fatalf("jwt-bearer: %d %v", status, b)
	}
	if _, ok := b["refresh_token"]; ok {
		t.Errorf("an ID-JAG got a refresh token; the client asks the identity provider again")
	}
	if c := checkAccessToken(t, f.e, b["access_token"].(string)); c.Subject != "alice" || c.Audience[0] != mcpResource {
		t.Errorf("token sub %q aud %v", c.Subject, c.Audience)
	}
	g := strings.Join(f.s.Metadata().GrantTypesSupported, " ")
	if !strings.Contains(g, grantTypeJWTBearer) || !strings.Contains(g, grantTypeTokenExchange) {
		t.Errorf("grant_types_supported %q", g)
	}
}

// TestTokenExchangeRefusals: each check of the identity provider refuses
// its broken request, naming what was wrong.
func TestTokenExchangeRefusals(t *testing.T) {
	f, _ := idjagFixture(t, []string{"carol"}, confID)
	idt := f.idToken(t)
	change := func(fn func(url.Values)) url.Values {
		v := tokenExchange(idt)
		fn(v)
		return v
	}
	for _, tc := range []struct {
		name, user string
		form       url.Values
		code, desc string
	}{
		{"user not assigned", confID, tokenExchange(idt), "access_denied", "user alice is not assigned to " + asIssuer},
		{"wrong requested type", confID, change(func(v url.Values) { v.Set("requested_token_type", "urn:ietf:params:oauth:token-type:access_token") }), "invalid_request", "is not " + tokenTypeIDJAG},
		{"wrong subject type", confID, change(func(v url.Values) { v.Set("subject_token_type", "urn:ietf:params:oauth:token-type:jwt") }), "invalid_request", "subject_token_type"},
		{"unknown audience", confID, change(func(v url.Values) { v.Set("audience", "https://elsewhere.example") }), "invalid_target", "not an authorization server this enterprise has connected"},
		{"no resource", confID, change(func(v url.Values) { v.Del("resource") }), "invalid_request", "resource is missing"},
		{"forged subject token", confID, change(func(v url.Values) { v.Set("subject_token", idt[:len(idt)-4]+"AAAA") }), "invalid_grant", "signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := f.token(t, tc.form, tc.user, confSecret)
			if status != http.StatusBadRequest || b["error"] != tc.code || !strings.Contains(b["error_description"].(string), tc.desc) {
				t.Errorf("got %d %v, want %s naming %q", status, b, tc.code, tc.desc)
			}
		})
	}
	if status, b := f.token(t, tokenExchange(idt), "", ""); status/100 != 4 || b["error"] == nil {
		t.Errorf("without client authentication: %d %v", status, b)
	}
}

// TestIDJAGRefusals: the authorization server's checks of an ID-JAG.
func TestIDJAGRefusals(t *testing.T) {
	f, key := idjagFixture(t, nil, confID)
	now := f.e.clock.Now()
	sign := func(typ string, c idjagClaims) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(sig).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := func() idjagClaims {
		return idjagClaims{Claims: jwt.Claims{Issuer: asIssuer, Subject: "alice", Audience: jwt.Audience{asIssuer},
			Expiry: jwt.NewNumericDate(now.Add(time.Minute))}, ClientID: confID, Resource: mcpResource}
	}
	with := func(fn func(*idjagClaims)) idjagClaims { c := good(); fn(&c); return c }
	for _, tc := range []struct{ name, assertion, desc string }{
		{"typ", sign("JWT", good()), "typ is \"JWT\", not oauth-id-jag+jwt"},
		{"audience", sign(typIDJAG, with(func(c *idjagClaims) { c.Audience = jwt.Audience{"https://other.example"} })), "does not name this server"},
		{"client", sign(typIDJAG, with(func(c *idjagClaims) { c.ClientID = "someone-else" })), `issued for client "someone-else"`},
		{"expired", sign(typIDJAG, with(func(c *idjagClaims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)) })), "expired at"},
		{"issuer", sign(typIDJAG, with(func(c *idjagClaims) { c.Issuer = "https://idp.elsewhere.example" })), "not an identity provider this server trusts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := f.token(t, url.Values{"grant_type": {grantTypeJWTBearer}, "assertion": {tc.assertion}}, confID, confSecret)
			if status != http.StatusBadRequest || b["error"] != "invalid_grant" || !strings.Contains(b["error_description"].(string), tc.desc) {
				t.Errorf("got %d %v, want invalid_grant naming %q", status, b, tc.desc)
			}
		})
	}
	if status, b := f.token(t, url.Values{"grant_type": {grantTypeJWTBearer}, "assertion": {sign(typIDJAG, good())}}, confID, confSecret); status != http.StatusOK {
		t.Errorf("the good ID-JAG was refused: %d %v", status, b)
	}
}
