package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// newTestProxy builds a proxy for one route on mcp.test with a fake clock.
func newTestProxy(t testing.TB, extra string) (*Proxy, *time.Time) {
	t.Helper()
	return newTestProxyTop(t, "", extra)
}

// newTestProxyTop also takes top-level configuration lines.
func newTestProxyTop(t testing.TB, top, extra string) (*Proxy, *time.Time) {
	t.Helper()
	return newTestProxyWith(t, top, extra, nil, nil)
}

// newTestProxyWith also takes the proxy's outbound transport and a wrapper
// of its store.
func newTestProxyWith(t testing.TB, top, extra string, transport http.RoundTripper, wrap func(store.Backend) store.Backend) (*Proxy, *time.Time) {
	t.Helper()
	return newTestProxySource(t, testConfig(top, "", extra), transport, wrap)
}

// testConfig is the test proxy's configuration: top-level lines top, the
// route mcp.test (to https://upstream.test) with the route-level lines
// route (such as a policy, indented four spaces) and the mcp.server
// options extra.
func testConfig(top, route, extra string) string {
	return `tls: {cert_file: c.pem, key_file: k.pem}
identity_provider: {issuer: https://idp.test, client_id: p, client_secret: s}
` + top + `
routes:
  - from: https://mcp.test
    to: https://upstream.test
` + route + `
    mcp:
      server: {` + extra + `}
`
}

// newTestProxySource runs a test proxy on the configuration src.
func newTestProxySource(t testing.TB, src string, transport http.RoundTripper, wrap func(store.Backend) store.Backend) (*Proxy, *time.Time) {
	t.Helper()
	return newTestProxyOptions(t, src, Options{Transport: transport}, wrap)
}

// newTestProxyOptions runs a test proxy on the configuration src with the
// options o, whose logger, clock and store it sets.
func newTestProxyOptions(t testing.TB, src string, o Options, wrap func(store.Backend) store.Backend) (*Proxy, *time.Time) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("mcp.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(dir, "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b store.Backend = store.NewMemoryClock(func() time.Time { return now })
	if wrap != nil {
		b = wrap(b)
	}
	o.Now, o.Backend = func() time.Time { return now }, b
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &now
}

func do(p *Proxy, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, r)
	return rec
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

const (
	testClient   = "https://client.test/app.json"
	testRedirect = "https://client.test/cb"
	testVerifier = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
)

// seedCode stores a code as the end of an authorization would.
func seedCode(t *testing.T, p *Proxy, code string, now time.Time) {
	t.Helper()
	err := p.putCode(code, &authserver.Code{
		Request: authserver.AuthRequest{Route: "mcp.test", ClientID: testClient, RedirectURI: testRedirect,
			CodeChallenge: challengeOf(testVerifier), Resource: "https://mcp.test/mcp", Upstream: "https://upstream.test/mcp"},
		Subject: "alice", BindingKey: p.current().routes["mcp.test"].bindingKey("alice", "", "https://upstream.test/mcp"), Expires: now.Add(authserver.CodeTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func tokenRequest(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/.mcp-proxy/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func good() url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {"the-code"}, "client_id": {testClient},
		"redirect_uri": {testRedirect}, "code_verifier": {testVerifier}, "resource": {"https://mcp.test/mcp"}}
}

// TestTokenEndpointRefusals: each bad request gets its precise OAuth error,
// and the code survives it: a refused request consumes nothing.
func TestTokenEndpointRefusals(t *testing.T) {
	p, now := newTestProxy(t, "")
	seedCode(t, p, "the-code", *now)
	tests := []struct {
		name   string
		change func(url.Values)
		status int
		code   string
		desc   string
	}{
		{"no grant type", func(v url.Values) { v.Del("grant_type") }, 400, "invalid_request", "grant_type is missing"},
		{"unsupported grant", func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"},
		{"unknown code", func(v url.Values) { v.Set("code", "nope") }, 400, "invalid_grant", "the code is unknown, already used or expired"},
		{"another client", func(v url.Values) { v.Set("client_id", "https://client.test/other.json") }, 400, "invalid_grant", "the code was issued to another client_id"},
		{"redirect mismatch", func(v url.Values) { v.Set("redirect_uri", testRedirect+"/") }, 400, "invalid_grant", "redirect_uri differs from the one in the authorization request"},
		{"no verifier", func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)"},
		{"wrong verifier", func(v url.Values) { v.Set("code_verifier", strings.Repeat("x", 43)) }, 400, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)"},
		{"plain verifier equal to the challenge", func(v url.Values) { v.Set("code_verifier", challengeOf(testVerifier)) }, 400, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)"},
		{"another resource", func(v url.Values) { v.Set("resource", "https://mcp.test/other") }, 400, "invalid_target", "resource differs from the one in the authorization request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good()
			tt.change(f)
			rec := do(p, tokenRequest(f))
			var body tokenError
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error != tt.code || body.Description != tt.desc {
				t.Errorf("got %d %q %q, want %d %q %q", rec.Code, body.Error, body.Description, tt.status, tt.code, tt.desc)
			}
			if body.RequestID == "" || body.RequestID != rec.Header().Get("X-Request-Id") {
				t.Errorf("request_id %q, header %q", body.RequestID, rec.Header().Get("X-Request-Id"))
			}
		})
	}
	// The good request still works: nothing above consumed the code.
	rec := do(p, tokenRequest(good()))
	if rec.Code != http.StatusOK {
		t.Fatalf("the good request after the refusals: %d %s", rec.Code, rec.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" || tr.RefreshToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("token response %s (%v)", rec.Body, err)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	// Single use.
	rec = do(p, tokenRequest(good()))
	if !strings.Contains(rec.Body.String(), "the code is unknown, already used or expired") {
		t.Errorf("a reused code: %d %s", rec.Code, rec.Body)
	}

	// The access token names the grant; the refresh token rotates.
	at, err := p.accessToken(tr.AccessToken)
	if err != nil || at == nil || at.Grant.Subject != "alice" || at.Grant.BindingKey != p.current().routes["mcp.test"].bindingKey("alice", "", "https://upstream.test/mcp") {
		t.Fatalf("access token grant: %+v %v", at, err)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {testClient}}
	rec = do(p, tokenRequest(refresh))
	if rec.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	rec = do(p, tokenRequest(refresh))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid_grant") {
		t.Errorf("a rotated refresh token was accepted again: %d %s", rec.Code, rec.Body)
	}
}

func TestCodeExpires(t *testing.T) {
	p, now := newTestProxy(t, "")
	seedCode(t, p, "the-code", *now)
	*now = now.Add(authserver.CodeTTL)
	rec := do(p, tokenRequest(good()))
	if !strings.Contains(rec.Body.String(), "the code is unknown, already used or expired") {
		t.Errorf("an expired code: %d %s", rec.Code, rec.Body)
	}
}

func TestDownstreamChallengeAndUnknownHost(t *testing.T) {
	p, _ := newTestProxy(t, "")
	rec := do(p, httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader("{}")))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", rec.Code)
	}
	if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"`; got != want {
		t.Errorf("challenge = %s, want %s", got, want)
	}
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", nil)
	r.Header.Set("Authorization", "Bearer forged")
	rec = do(p, r)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("forged token: %d %s", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	for _, path := range []string{"/.mcp-proxy/client-metadata.json", "/.well-known/oauth-protected-resource", "/mcp"} {
		r := httptest.NewRequest(http.MethodGet, "https://mcp.test"+path, nil)
		r.Host = "evil.test"
		rec = do(p, r)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusNotFound || !strings.Contains(string(body), `"unknown_host"`) || strings.Contains(string(body), "client_id") {
			t.Errorf("Host evil.test %s: %d %s", path, rec.Code, body)
		}
	}
}

func TestOriginAndSizeLimits(t *testing.T) {
	p, _ := newTestProxy(t, "allowed_origins: [https://app.test], max_request_bytes: 10")
	for _, tc := range []struct {
		origin string
		body   string
		status int
	}{
		{"https://evil.test", "{}", http.StatusForbidden},
		{"https://app.test", "{}", http.StatusUnauthorized}, // allowed; then the token check
		{"https://mcp.test", "{}", http.StatusUnauthorized},
		{"", strings.Repeat("x", 11), http.StatusRequestEntityTooLarge},
	} {
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(tc.body))
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if rec := do(p, r); rec.Code != tc.status {
			t.Errorf("Origin %q, %d bytes: %d, want %d (%s)", tc.origin, len(tc.body), rec.Code, tc.status, rec.Body)
		}
	}
}

func TestMetadataDocuments(t *testing.T) {
	p, _ := newTestProxy(t, "")
	get := func(path string) map[string]any {
		rec := do(p, httptest.NewRequest(http.MethodGet, "https://mcp.test"+path, nil))
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return m
	}
	if got := get("/.well-known/oauth-protected-resource/mcp")["resource"]; got != "https://mcp.test/mcp" {
		t.Errorf("path PRM resource = %v", got)
	}
	if got := get("/.well-known/oauth-protected-resource")["resource"]; got != "https://mcp.test" {
		t.Errorf("root PRM resource = %v", got)
	}
	asm := get("/.well-known/oauth-authorization-server")
	if asm["issuer"] != "https://mcp.test" || asm["client_id_metadata_document_supported"] != true ||
		asm["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("AS metadata = %v", asm)
	}
	if m, _ := asm["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", asm["code_challenge_methods_supported"])
	}
	cimd := get("/.mcp-proxy/client-metadata.json")
	if cimd["client_id"] != "https://mcp.test/.mcp-proxy/client-metadata.json" || cimd["token_endpoint_auth_method"] != "none" {
		t.Errorf("CIMD = %v", cimd)
	}
	if r, _ := cimd["redirect_uris"].([]any); len(r) != 1 || r[0] != "https://mcp.test/.mcp-proxy/upstream/callback" {
		t.Errorf("CIMD redirect_uris = %v", cimd["redirect_uris"])
	}
}

// failingBackend answers every operation with ErrUnavailable, as an
// unreachable Redis does.
type failingBackend struct {
	store.Backend
	failing *atomic.Bool
}

func (b failingBackend) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if b.failing.Load() {
		return nil, store.ErrUnavailable
	}
	return b.Backend.Get(ctx, ns, key)
}

// TestStorageUnavailable: a request whose token cannot be looked up gets a
// 503 with a request id that the log carries too.
func TestStorageUnavailable(t *testing.T) {
	failing := new(atomic.Bool)
	p, _ := newTestProxyWith(t, "", "", nil, func(b store.Backend) store.Backend { return failingBackend{b, failing} })
	failing.Store(true)
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader("{}"))
	r.Header.Set("Authorization", "Bearer some-token")
	rec := do(p, r)
	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Error != "storage_unavailable" || body.RequestID == "" || body.RequestID != rec.Header().Get("X-Request-Id") {
		t.Errorf("got %d %+v (X-Request-Id %q)", rec.Code, body, rec.Header().Get("X-Request-Id"))
	}
}

// TestStoreOutageServesValidTokensFromMemory: while the store cannot be
// reached (Redis down, or failing over), a request whose access token and
// remote token this replica read before is answered from memory as long
// as both are valid; one the replica never read, or whose token expired,
// gets 503 storage_unavailable or the 401 challenge, as before.
func TestStoreOutageServesValidTokensFromMemory(t *testing.T) {
	failing := new(atomic.Bool)
	p, now := newTestProxyWith(t, "", "", &answer{status: http.StatusOK}, func(b store.Backend) store.Backend { return failingBackend{b, failing} })
	rt := p.current().routes["mcp.test"]
	ctx := context.Background()
	key := rt.bindingKey("alice", "", "https://upstream.test/mcp")
	if err := rt.tokens.Put(ctx, &upstream.Token{Key: key, AccessToken: "up", Grant: upstream.Grant{Resource: "https://upstream.test/mcp"},
		Subject: "alice", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	g := &request.Grant{ID: "g", Route: "mcp.test", Subject: "alice", BindingKey: key}
	for tok, life := range map[string]time.Duration{"long": time.Hour, "short": 40 * time.Second, "unread": time.Hour} {
		if err := p.putAccessToken(tok, &bearer.AccessToken{Grant: g, Expires: now.Add(life)}); err != nil {
			t.Fatal(err)
		}
	}
	call := func(tok string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader("{}"))
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := do(p, r)
		var b struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &b)
		return rec.Code, b.Error
	}
	for _, tok := range []string{"long", "short"} {
		if code, e := call(tok); code != http.StatusOK {
			t.Fatalf("%s with the store up: %d %s", tok, code, e)
		}
	}
	failing.Store(true)
	*now = now.Add(30 * time.Second) // well past the hot cache's TTL
	if code, e := call("long"); code != http.StatusOK {
		t.Errorf("a valid token read before, with the store down: %d %s; want 200 from memory", code, e)
	}
	if code, e := call("unread"); code != http.StatusServiceUnavailable || e != "storage_unavailable" {
		t.Errorf("a token this replica never read, with the store down: %d %s; want 503 storage_unavailable", code, e)
	}
	*now = now.Add(15 * time.Second)
	if code, e := call("short"); code != http.StatusUnauthorized {
		t.Errorf("a token that expired during the outage: %d %s; want the 401 challenge", code, e)
	}
	stale, err := metricValue(p, "mcp_proxy_store_stale_reads_total", "access")
	if err != nil || stale < 2 {
		t.Errorf("mcp_proxy_store_stale_reads_total{namespace=access} = %v, %v; want at least 2", stale, err)
	}
	*now = now.Add(hotStale)
	if code, e := call("long"); code != http.StatusServiceUnavailable || e != "storage_unavailable" {
		t.Errorf("with the store down for longer than hotStale: %d %s; want 503 storage_unavailable", code, e)
	}
}

// metricValue reads one counter of the proxy's registry by its single
// label's value.
func metricValue(p *Proxy, name, label string) (float64, error) {
	mfs, err := p.Metrics().Registry().Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("no %s{%s}", name, label)
}

// TestClientIDAllowlist: a client id outside allowed_client_id_domains is
// refused before its metadata document is fetched (the test proxy can
// reach nothing, so a fetch would fail differently).
func TestClientIDAllowlist(t *testing.T) {
	p, _ := newTestProxyTop(t, "allowed_client_id_domains: ['*.trusted.test']", "")
	q := url.Values{"client_id": {"https://evil.test/app.json"}, "redirect_uri": {"https://evil.test/cb"}, "response_type": {"code"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	rec := do(p, httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/authorize?"+q.Encode(), nil))
	body := rec.Body.String()
	if rec.Code != http.StatusForbidden || !strings.Contains(body, "client_not_allowed") ||
		!strings.Contains(body, "its host evil.test is not in allowed_client_id_domains") {
		t.Errorf("got %d %s", rec.Code, body)
	}
}
