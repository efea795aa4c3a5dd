package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
)

// register posts a registration and returns the issued client id.
func register(t *testing.T, p *Proxy, body string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test"+authserver.PathRegister, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := do(p, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("registration answered %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
		Token    string `json:"registration_access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Secret != "" || out.Token != "" {
		t.Fatalf("a registration got a secret or a registration access token: %s", rec.Body)
	}
	return out.ClientID
}

func authorizeAs(p *Proxy, clientID, redirect string) *httptest.ResponseRecorder {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	return do(p, httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/authorize?"+q.Encode(), nil))
}

// TestRegisteredClientErrorsStayOnTheProxyPage: before the redirect URI of
// a registered client is checked, nothing is redirected.
func TestRegisteredClientErrorsStayOnTheProxyPage(t *testing.T) {
	p, now := newTestProxy(t, "")
	id := register(t, p, `{"redirect_uris":["http://127.0.0.1:4000/cb"],"client_name":"<b>Evil</b>"}`)
	for _, tc := range []struct{ name, id, redirect, want string }{
		{"unregistered redirect URI", id, "http://127.0.0.1:4001/cb", "is not one of the redirect_uris"},
		{"unknown client id", registration.IDPrefix + "nosuchclient", "http://127.0.0.1:4000/cb", "no such client is registered"},
	} {
		rec := authorizeAs(p, tc.id, tc.redirect)
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d Location=%q %s", tc.name, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
	*now = now.Add(registration.UnusedTTL + time.Minute)
	if rec := authorizeAs(p, id, "http://127.0.0.1:4000/cb"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "no such client is registered") {
		t.Errorf("an unused registration past its lifetime: %d %s", rec.Code, rec.Body)
	}
}

// TestRegisteredClientAsksForConsentNotVerified: a signed-in user sees the
// consent page of a registered client, its name escaped, marked as not
// verified; the allowlist of client id domains does not apply.
func TestRegisteredClientAsksForConsentNotVerified(t *testing.T) {
	p, _ := newTestProxyTop(t, "allowed_client_id_domains: ['*.trusted.test']", "")
	id := register(t, p, `{"redirect_uris":["http://127.0.0.1:4000/cb"],"client_name":"<b>Evil</b>"}`)
	if err := p.putSession("sid", &authserverSession); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"client_id": {id}, "redirect_uri": {"http://127.0.0.1:4000/cb"}, "response_type": {"code"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	r := httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/authorize?"+q.Encode(), nil)
	r.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: "sid"})
	rec := do(p, r)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `id="not-verified"`) || !strings.Contains(body, "127.0.0.1:4000") {
		t.Fatalf("%d %s", rec.Code, body)
	}
	if strings.Contains(body, "<b>Evil</b>") || !strings.Contains(body, "&lt;b&gt;Evil&lt;/b&gt;") {
		t.Errorf("the client name is not escaped: %s", body)
	}
}

// TestRegistrationOff: no endpoint in the metadata, 404 at the endpoint,
// and clients registered before stop working.
func TestRegistrationOff(t *testing.T) {
	p, _ := newTestProxyTop(t, "disable_client_registration: true", "")
	rec := do(p, httptest.NewRequest(http.MethodGet, "https://mcp.test/.well-known/oauth-authorization-server", nil))
	if strings.Contains(rec.Body.String(), "registration_endpoint") {
		t.Errorf("metadata with registration off: %s", rec.Body)
	}
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test"+authserver.PathRegister, strings.NewReader(`{"redirect_uris":["http://127.0.0.1:1/cb"]}`))
	r.Header.Set("Content-Type", "application/json")
	if rec := do(p, r); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "registration_disabled") {
		t.Errorf("registration with registration off: %d %s", rec.Code, rec.Body)
	}
	if rec := authorizeAs(p, registration.IDPrefix+"old", "http://127.0.0.1:1/cb"); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "dynamic client registration is turned off") {
		t.Errorf("a registered client with registration off: %d %s", rec.Code, rec.Body)
	}
}

func TestRegistrationRefusalsStoreNothing(t *testing.T) {
	p, _ := newTestProxy(t, "")
	for _, body := range []string{`{"redirect_uris":["javascript:x"]}`, `{`, `{"redirect_uris":["https://a.test/cb"],"token_endpoint_auth_method":"client_secret_basic"}`} {
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test"+authserver.PathRegister, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if rec := do(p, r); rec.Code != http.StatusBadRequest || rec.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s: %d %s", body, rec.Code, rec.Body)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test"+authserver.PathRegister, strings.NewReader(`{"redirect_uris":["https://a.test/cb"]}`))
	r.Header.Set("Content-Type", "text/plain")
	if rec := do(p, r); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "must be JSON") {
		t.Errorf("text/plain: %d %s", rec.Code, rec.Body)
	}
	n := 0
	_ = p.backend.Scan(t.Context(), string(registration.NS), "", func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d registrations stored by refused requests", n)
	}
}

// TestRegisteredClientTokensNeedTheRegistration: once the registration is
// gone, the token endpoint refuses the client's refresh tokens.
func TestRegisteredClientTokensNeedTheRegistration(t *testing.T) {
	p, now := newTestProxy(t, "")
	id := register(t, p, `{"redirect_uris":["http://127.0.0.1:4000/cb"]}`)
	*now = now.Add(registration.UnusedTTL + time.Minute)
	rec := do(p, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {id}}))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "no such client is registered") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// TestUsedRegistrationOutlivesTheUnusedLifetime: a client that got tokens
// keeps its registration past UnusedTTL, so its refresh tokens work.
func TestUsedRegistrationOutlivesTheUnusedLifetime(t *testing.T) {
	p, now := newTestProxy(t, "")
	id := register(t, p, `{"redirect_uris":["http://127.0.0.1:4000/cb"]}`)
	err := p.putCode("the-code", &authserver.Code{
		Request: authserver.AuthRequest{Route: "mcp.test", ClientID: id, RedirectURI: "http://127.0.0.1:4000/cb",
			CodeChallenge: challengeOf(testVerifier), Resource: "https://mcp.test/mcp", Upstream: "https://upstream.test/mcp"},
		Subject: "alice", BindingKey: p.current().routes["mcp.test"].bindingKey("alice", "", "https://upstream.test/mcp"), Expires: now.Add(authserver.CodeTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := do(p, tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {"the-code"}, "client_id": {id},
		"redirect_uri": {"http://127.0.0.1:4000/cb"}, "code_verifier": {testVerifier}}))
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("code exchange: %d %s", rec.Code, rec.Body)
	}
	*now = now.Add(registration.UnusedTTL + time.Hour)
	rec = do(p, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {id}}))
	if rec.Code != http.StatusOK {
		t.Errorf("refresh after UnusedTTL of a used client: %d %s", rec.Code, rec.Body)
	}
}

// TestRegistrationCountIsBounded: with MaxLive registrations stored, the
// next is refused with 503 and nothing is stored.
func TestRegistrationCountIsBounded(t *testing.T) {
	p, now := newTestProxy(t, "")
	for i := range registration.MaxLive {
		if err := p.backend.Put(t.Context(), string(registration.NS), registration.IDPrefix+strconv.Itoa(i), []byte(`{}`), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test"+authserver.PathRegister, strings.NewReader(`{"redirect_uris":["http://127.0.0.1:1/cb"]}`))
	r.Header.Set("Content-Type", "application/json")
	if rec := do(p, r); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "registration_limit_reached") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
