package mockmcp

import (
	"net/http"
	"testing"
)

// hydraClaims are the claims of an Ory Hydra JWT access token: scopes in
// an "scp" array, no "scope".
func (e *env) hydraClaims() map[string]any {
	c := e.claims()
	delete(c, "scope")
	c["scp"] = []string{"offline_access"}
	return c
}

func TestExternalIssuerProfile(t *testing.T) {
	external := newEnv(t, func(c *Config, _ *testAS) { c.ExternalIssuers = []string{issuer} })
	for _, typ := range []string{"JWT", "at+jwt"} {
		resp, body := external.post("Bearer "+mintTyp(t, external.key, typ, external.hydraClaims()), initializeBody)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("typ %s from an external issuer: status %d, want 200: %s", typ, resp.StatusCode, body)
		}
	}
	// Everything else is still verified.
	wrongAud := external.hydraClaims()
	wrongAud["aud"] = []string{"https://other.example.com"}
	other := newRSAKey(t, "key-1", "RS256") // same kid, another key: a forgery
	for name, tok := range map[string]string{
		"wrong audience": mintTyp(t, external.key, "JWT", wrongAud),
		"forged":         mintTyp(t, other, "JWT", external.hydraClaims()),
		"typ JOSE":       mintTyp(t, external.key, "JOSE", external.hydraClaims()),
	} {
		if resp, body := external.post("Bearer "+tok, initializeBody); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401: %s", name, resp.StatusCode, body)
		}
	}

	// The same token from an issuer that is not external is refused: typ JWT
	// is not an RFC 9068 access token.
	strict := newEnv(t)
	resp, body := strict.post("Bearer "+mintTyp(t, strict.key, "JWT", strict.hydraClaims()), initializeBody)
	if err := checkRefused(resp, body, invalidToken("typ 'JWT' is not at+jwt: not a JWT access token (RFC 9068 section 4)")); err != nil {
		t.Error(err)
	}
}

func TestExternalIssuersMustBeTrusted(t *testing.T) {
	_, err := New(Config{ResourceURL: resourceURL, AuthorizationServers: []string{issuer}, ExternalIssuers: []string{"https://elsewhere.example.com"}})
	if err == nil {
		t.Error("an external issuer outside AuthorizationServers was accepted")
	}
}
