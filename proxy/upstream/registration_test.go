package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hydraRegistration is the shape of Ory Hydra v2.3.0's 201 answer to a
// registration: "jwks" is an object, as RFC 7591 section 2 defines it.
const hydraRegistration = `{
  "client_id": "0b1d7f4c-2f0e-4c55-9a0c-1f2e3d4c5b6a",
  "client_name": "mcp-proxy for mcp.example.com",
  "client_secret": "s3cr3t-from-the-server",
  "client_secret_expires_at": 0,
  "client_uri": "https://mcp.example.com",
  "created_at": "2026-12-01T20:00:00Z",
  "grant_types": ["authorization_code", "refresh_token"],
  "jwks": {},
  "metadata": {},
  "redirect_uris": ["https://mcp.example.com/.mcp-proxy/upstream/callback"],
  "registration_access_token": "ory_at_registration-access-token-value",
  "registration_client_uri": "https://auth.provider.com/oauth2/register/0b1d7f4c-2f0e-4c55-9a0c-1f2e3d4c5b6a",
  "response_types": ["code"],
  "scope": "offline_access offline openid",
  "skip_consent": false,
  "token_endpoint_auth_method": "none"
}`

var registrationSecrets = []string{"s3cr3t-from-the-server", "registration-access-token-value"}

func registrationServer(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRegisterDecodesHydra(t *testing.T) {
	srv := registrationServer(t, http.StatusCreated, "application/json; charset=utf-8", hydraRegistration)
	reg, err := Register(context.Background(), srv.Client(), srv.URL, "mcp-proxy for mcp.example.com", "https://mcp.example.com", "https://mcp.example.com/.mcp-proxy/upstream/callback")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if reg.ClientID != "0b1d7f4c-2f0e-4c55-9a0c-1f2e3d4c5b6a" || reg.ClientSecret != "s3cr3t-from-the-server" ||
		reg.TokenEndpointAuthMethod != "none" || reg.RegistrationAccessToken != "ory_at_registration-access-token-value" ||
		!strings.HasPrefix(reg.RegistrationClientURI, "https://auth.provider.com/oauth2/register/") ||
		string(reg.JWKS) != "{}" || reg.Scope != "offline_access offline openid" || len(reg.GrantTypes) != 2 {
		t.Errorf("decoded %#v", *reg)
	}
	for _, shown := range []string{reg.String(), fmt.Sprintf("%v %+v %#v %s", reg, reg, reg, reg), logged(reg)} {
		if !strings.Contains(shown, reg.ClientID) {
			t.Errorf("%q does not name the client", shown)
		}
		for _, s := range append(registrationSecrets, "oauth2/register") {
			if strings.Contains(shown, s) {
				t.Errorf("%q shows %s", shown, s)
			}
		}
	}
}

func logged(v any) string {
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("registered", "registration", v)
	return b.String()
}

func TestDecodeRegistrationTolerance(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(*Registration) bool
	}{
		{"minimal", `{"client_id":"c1"}`, func(r *Registration) bool { return r.ClientID == "c1" && r.JWKS == nil }},
		{"timestamps as strings", `{"client_id":"c1","client_id_issued_at":"1764619200","client_secret_expires_at":"0"}`,
			func(r *Registration) bool { return r.ClientIDIssuedAt == 1764619200 && r.ClientSecretExpiresAt == 0 }},
		{"timestamps as numbers", `{"client_id":"c1","client_id_issued_at":1764619200,"client_secret_expires_at":1764705600}`,
			func(r *Registration) bool {
				return r.ClientIDIssuedAt == 1764619200 && r.ClientSecretExpiresAt == 1764705600
			}},
		{"numeric client id", `{"client_id":12345}`, func(r *Registration) bool { return r.ClientID == "12345" }},
		{"jwks with keys", `{"client_id":"c1","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}}`,
			func(r *Registration) bool { return strings.Contains(string(r.JWKS), `"keys"`) }},
		{"nulls", `{"client_id":"c1","jwks":null,"grant_types":null,"scope":null,"client_secret_expires_at":null}`,
			func(r *Registration) bool { return r.JWKS == nil && r.GrantTypes == nil && r.Scope == "" }},
		{"one grant type as a string", `{"client_id":"c1","grant_types":"authorization_code"}`,
			func(r *Registration) bool { return len(r.GrantTypes) == 1 && r.GrantTypes[0] == "authorization_code" }},
		{"unknown members", `{"client_id":"c1","metadata":{"a":1},"skip_consent":false,"owner":""}`,
			func(r *Registration) bool { return r.ClientID == "c1" }},
		{"a management URI that is not https is dropped", `{"client_id":"c1","registration_client_uri":"javascript:alert(1)"}`,
			func(r *Registration) bool { return r.RegistrationClientURI == "" }},
	}
	for _, tt := range tests {
		reg, err := DecodeRegistration([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !tt.check(reg) {
			t.Errorf("%s: decoded %#v", tt.name, *reg)
		}
	}
	for _, bad := range []string{`{}`, `{"client_id":""}`, `[]`, `{"client_id":"c1","grant_types":[1]}`, `not json`} {
		if _, err := DecodeRegistration([]byte(bad)); err == nil {
			t.Errorf("%s: decoded, want an error", bad)
		}
	}
}

// TestRegisterErrorsAreRedacted: no error built from a registration
// endpoint's answer quotes a credential.
func TestRegisterErrorsAreRedacted(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"201 that is not a client information response", "application/json", strings.Replace(hydraRegistration, `"grant_types": [`, `"grant_types": [7, `, 1), http.StatusCreated,
			`member "grant_types"`},
		{"201 without client_id", "application/json", strings.Replace(hydraRegistration, `"client_id": "0b1d7f4c-2f0e-4c55-9a0c-1f2e3d4c5b6a",`, ``, 1), http.StatusCreated,
			"has no client_id"},
		{"400 RFC 7591 error quoting the secret", "application/json",
			`{"error":"invalid_client_metadata","error_description":"client_secret=s3cr3t-from-the-server is not allowed; registration_access_token: ory_at_registration-access-token-value"}`,
			http.StatusBadRequest, "error invalid_client_metadata: client_secret=[redacted]"},
		{"500 echoing the whole answer", "application/json", hydraRegistration, http.StatusInternalServerError,
			`"client_secret":"[redacted]"`},
		{"502 HTML page", "text/html", `<p>upstream said access_token=s3cr3t-from-the-server&refresh_token=registration-access-token-value</p>`, http.StatusBadGateway,
			"access_token=[redacted]&refresh_token=[redacted]"},
		{"201 as text", "text/plain", hydraRegistration, http.StatusCreated, `answered "text/plain"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := registrationServer(t, tt.status, tt.contentType, tt.body)
			_, err := Register(context.Background(), srv.Client(), srv.URL, "n", "https://mcp.example.com", "https://mcp.example.com/cb")
			if err == nil {
				t.Fatal("Register succeeded")
			}
			msg := err.Error()
			for _, s := range registrationSecrets {
				if strings.Contains(msg, s) {
					t.Errorf("the error shows %s: %s", s, msg)
				}
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
}
