package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestClientAssertion: a private_key_jwt client sends, on every request to
// the token and revocation endpoints, a client assertion the authorization
// server can verify with the client's public key (RFC 7523 §3): signed
// with the key's algorithm and kid, iss and sub the client id, aud the
// issuer (the token endpoint when there is none), a fresh jti, exp one
// minute after iat; never a secret, never HTTP Basic.
func TestClientAssertion(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		key     crypto.Signer
		kid     string
		issuer  string
		wantAlg jose.SignatureAlgorithm
		wantAud func(tokenURL string) string
	}{
		{"ES256 with the issuer as audience", ec, "key-1", "https://auth.provider.com", jose.ES256, func(string) string { return "https://auth.provider.com" }},
		{"RS256 without kid, static endpoints: the token endpoint as audience", rsaKey, "", "", jose.RS256, func(tokenURL string) string { return tokenURL }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, http.StatusOK, okToken)
			var basic []bool
			inner := ts.Config.Handler
			ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _, ok := r.BasicAuth()
				basic = append(basic, ok)
				inner.ServeHTTP(w, r)
			})
			g := Grant{Issuer: tt.issuer, TokenURL: ts.URL + "/token", RevocationURL: ts.URL + "/revoke", ClientID: "mcp-proxy-service",
				Resource: "https://remote-mcp.provider.com/mcp", Method: MethodPreregistered}
			auth := ClientAuth{Key: tt.key, KeyID: tt.kid, Now: func() time.Time { return now }}
			ctx := context.Background()
			calls := map[string]func() error{
				"ClientCredentials": func() error { _, err := g.ClientCredentials(ctx, ts.Client(), auth, now); return err },
				"Exchange": func() error {
					_, err := g.Exchange(ctx, ts.Client(), "https://mcp.example.com/cb", "code", "verifier", auth)
					return err
				},
				"Refresh": func() error { _, err := g.Refresh(ctx, ts.Client(), "rt", auth, now); return err },
				"Revoke":  func() error { return g.Revoke(ctx, ts.Client(), "rt", "refresh_token", auth) },
			}
			seen := map[string]string{} // jti → call
			for name, call := range calls {
				if err := call(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				form := ts.last()
				if got := form.Get("client_assertion_type"); got != AssertionType {
					t.Errorf("%s: client_assertion_type = %q, want %q", name, got, AssertionType)
				}
				if form.Has("client_secret") || basic[len(basic)-1] {
					t.Errorf("%s: a private_key_jwt client sent a secret (form %v, Basic %v)", name, form, basic[len(basic)-1])
				}
				if got := form.Get("client_id"); got != g.ClientID {
					t.Errorf("%s: client_id = %q, want %q", name, got, g.ClientID)
				}
				claims, header := verifyAssertion(t, name, form, tt.key.Public(), tt.wantAlg)
				if header.KeyID != tt.kid {
					t.Errorf("%s: kid = %q, want %q", name, header.KeyID, tt.kid)
				}
				if claims.Issuer != g.ClientID || claims.Subject != g.ClientID {
					t.Errorf("%s: iss %q, sub %q; want both %q", name, claims.Issuer, claims.Subject, g.ClientID)
				}
				if want := tt.wantAud(g.TokenURL); len(claims.Audience) != 1 || claims.Audience[0] != want {
					t.Errorf("%s: aud = %v, want [%s]", name, claims.Audience, want)
				}
				if claims.IssuedAt == nil || !claims.IssuedAt.Time().Equal(now) {
					t.Errorf("%s: iat = %v, want %v", name, claims.IssuedAt, now)
				}
				if claims.Expiry == nil || !claims.Expiry.Time().Equal(now.Add(AssertionLifetime)) {
					t.Errorf("%s: exp = %v, want %v", name, claims.Expiry, now.Add(AssertionLifetime))
				}
				if claims.ID == "" || seen[claims.ID] != "" {
					t.Errorf("%s: jti %q is empty or was used by %s", name, claims.ID, seen[claims.ID])
				}
				seen[claims.ID] = name
			}
		})
	}
}

// verifyAssertion checks the form's client assertion's signature with pub
// and returns its claims and header.
func verifyAssertion(t *testing.T, name string, form url.Values, pub crypto.PublicKey, alg jose.SignatureAlgorithm) (jwt.Claims, jose.Header) {
	t.Helper()
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("%s: client_assertion %q is not a JWT signed with %s: %v", name, form.Get("client_assertion"), alg, err)
	}
	var claims jwt.Claims
	if err := tok.Claims(pub, &claims); err != nil {
		t.Fatalf("%s: the assertion's signature does not verify with the client's public key: %v", name, err)
	}
	return claims, tok.Headers[0]
}

// TestSigningAlgorithm: keys the proxy cannot sign assertions with are
// refused with a reason.
func TestSigningAlgorithm(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, key := range map[string]crypto.PublicKey{"P-384": p384.Public(), "RSA 1024": small.Public()} {
		if alg, err := SigningAlgorithm(key); err == nil {
			t.Errorf("%s: SigningAlgorithm = %s, want an error", name, alg)
		}
	}
}
