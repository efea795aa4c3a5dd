package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Fuzz targets for what a remote server sends the proxy. Seeds come from
// the RFCs' examples and the answers of the servers the proxy was tried
// against. make test runs each briefly (make fuzz for longer); a crasher
// found goes into testdata/fuzz as a regression case.

// FuzzTokenResponse: readToken never panics, and a token it returns has
// an access token.
func FuzzTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA"}`, // RFC 6749 §5.1
		`{"error":"invalid_request"}`, // RFC 6749 §5.2
		`{"access_token":"a","expires_in":"3600","scope":"mcp:read mcp:write"}`,
		`{"access_token":"","expires_in":-1}`,
		`not json`,
	} {
		f.Add([]byte(s), 200)
		f.Add([]byte(s), 400)
	}
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body))}
		tok, err := readToken(resp, "https://as.example/token", "keep", time.Unix(0, 0))
		if err == nil && tok.AccessToken == "" {
			t.Fatalf("a token without access_token from %q", body)
		}
		if err != nil && strings.Contains(err.Error(), "keep") {
			t.Fatalf("an error names the kept refresh token: %v", err)
		}
	})
}

// FuzzRegistration: DecodeRegistration never panics, and never shows the
// registration's secrets in its text.
func FuzzRegistration(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"s6BhdRkqt3","client_secret":"cf136dc3c1fc93f31185e5885805d","client_id_issued_at":2893256800,"client_secret_expires_at":2893276800,"redirect_uris":["https://client.example.org/callback"],"token_endpoint_auth_method":"client_secret_basic"}`, // RFC 7591 §3.2.1
		`{"client_id":"c","jwks":{},"registration_access_token":"reg-secret","registration_client_uri":"https://as/clients/c"}`,                                                                                                                                        // Hydra
		`{"client_id":"c","client_id_issued_at":"2893256800","client_secret_expires_at":null}`,
		`{}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reg, err := DecodeRegistration(body)
		if err != nil || reg == nil {
			return
		}
		for _, secret := range []string{reg.ClientSecret, reg.RegistrationAccessToken} {
			if len(secret) >= 8 && strings.Contains(reg.String(), secret) {
				t.Fatalf("the registration's text shows a secret: %s", reg)
			}
		}
	})
}

// FuzzAuthServerMetadataURLs: every issuer gets well-known URLs on its own
// origin, or an error; none has an empty or doubled path separator.
func FuzzAuthServerMetadataURLs(f *testing.F) {
	for _, s := range []string{"https://as.example", "https://as.example/", "https://as.example:8443/tenant/v2", "http://127.0.0.1:8080/", "https://[::1]/x", "", "as.example", "https://as.example/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, issuer string) {
		urls, err := AuthServerMetadataURLs(issuer)
		if err != nil {
			return
		}
		for _, u := range urls {
			if !strings.Contains(u, "/.well-known/") || strings.Contains(strings.SplitN(u, "://", 2)[1], "//") {
				t.Fatalf("issuer %q gave %q", issuer, u)
			}
		}
	})
}

// FuzzChallenge: the insufficient_scope reading of WWW-Authenticate (RFC
// 6750 §3) never panics.
func FuzzChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="example"`, // RFC 6750 §3
		`Bearer realm="example", error="invalid_token", error_description="The access token expired"`,
		`Bearer error="insufficient_scope", scope="files:write", resource_metadata="https://r.example/.well-known/oauth-protected-resource"`,
		`Basic realm="x", Bearer scope=""`, `Bearer ,,,`, `Bearer error="`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		_, _ = oauthex.ParseWWWAuthenticate([]string{h})
	})
}

// fuzzRemote answers the proxy's discovery from fuzzed documents, in
// memory: the MCP endpoint challenges, and the well-known locations serve
// prm and asm.
type fuzzRemote struct{ challenge, prm, asm []byte }

func (f fuzzRemote) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}
	switch {
	case r.URL.Path == "/mcp":
		resp.StatusCode = http.StatusUnauthorized
		resp.Header.Set("WWW-Authenticate", string(f.challenge))
	case strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource"):
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "application/json")
		resp.Body = io.NopCloser(bytes.NewReader(f.prm))
	case strings.HasPrefix(r.URL.Path, "/.well-known/"):
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "application/json")
		resp.Body = io.NopCloser(bytes.NewReader(f.asm))
	}
	return resp, nil
}

// FuzzDiscovery: discovery never panics on any challenge and protected
// resource and authorization server metadata (RFC 9728, RFC 8414), and
// what it accepts has the endpoints the proxy needs, PKCE with S256, and
// only hosts its AllowHost let through.
func FuzzDiscovery(f *testing.F) {
	f.Add([]byte(`Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp", scope="mcp:read"`),
		[]byte(`{"resource":"https://mcp.test/mcp","authorization_servers":["https://mcp.test"],"scopes_supported":["mcp:read"]}`),                                                                                              // RFC 9728 §3.2
		[]byte(`{"issuer":"https://mcp.test","authorization_endpoint":"https://mcp.test/authorize","token_endpoint":"https://mcp.test/token","code_challenge_methods_supported":["S256"],"response_types_supported":["code"]}`)) // RFC 8414 §3.2
	f.Add([]byte(`Bearer`), []byte(`{"resource":"https://mcp.test/mcp","authorization_servers":[]}`), []byte(`{}`))
	f.Add([]byte(`Bearer resource_metadata="https://evil.test/x"`), []byte(`{"resource":"https://mcp.test/mcp","authorization_servers":["https://evil.test"]}`),
		[]byte(`{"issuer":"https://mcp.test","authorization_endpoint":"https://evil.test/a","token_endpoint":"https://mcp.test/t","code_challenge_methods_supported":["plain"]}`))
	f.Fuzz(func(t *testing.T, challenge, prm, asm []byte) {
		c := &Discoverer{
			HTTP: &http.Client{Transport: fuzzRemote{challenge, prm, asm}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			AllowHost: func(host string) error {
				if host != "mcp.test" {
					return errors.New("not mcp.test")
				}
				return nil
			},
		}
		d, _, err := c.Discover(context.Background(), "https://mcp.test/mcp", "")
		if err != nil || d.NoAuth {
			return
		}
		if d.AS == nil || d.AS.AuthorizationEndpoint == "" || d.AS.TokenEndpoint == "" || !slices.Contains(d.AS.CodeChallengeMethodsSupported, "S256") {
			t.Fatalf("accepted metadata the proxy cannot use: %+v", d.AS)
		}
		for _, u := range []string{d.Issuer, d.AS.AuthorizationEndpoint, d.AS.TokenEndpoint} {
			if pu, err := url.Parse(u); err != nil || pu.Hostname() != "mcp.test" {
				t.Fatalf("accepted a URL on a host AllowHost refused: %q", u)
			}
		}
	})
}
