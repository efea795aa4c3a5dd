package upstream

import (
	"bytes"
	"io"
	"net/http"
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
