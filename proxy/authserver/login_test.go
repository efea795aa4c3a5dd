package authserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// writeCounter counts the writes that reach a backend.
type writeCounter struct {
	store.Backend
	puts atomic.Int32
}

func (c *writeCounter) Put(ctx context.Context, ns, key string, v []byte, exp time.Time) error {
	c.puts.Add(1)
	return c.Backend.Put(ctx, ns, key, v, exp)
}

// loginServer is a route's authorization server whose identity provider and
// MCP client's metadata document are served by one test server.
func loginServer(t *testing.T) (*Server, *writeCounter, string) {
	t.Helper()
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize",
			"token_endpoint": base + "/token", "jwks_uri": base + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/client.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"client_id": base + "/client.json", "client_name": "Test client",
			"redirect_uris": []string{"https://client.test/cb"}})
	})
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	base = ts.URL
	cfg := configtest.Load(t, `
tls: {cert_file: c.pem, key_file: k.pem}
identity_provider: {issuer: `+base+`, client_id: p, client_secret: s}
routes:
  - from: https://mcp.test
    to: https://remote.test
    mcp: {server: {}}
`)
	b := &writeCounter{Backend: store.NewMemory()}
	log := slog.New(slog.DiscardHandler)
	s := New(Options{
		Route: &cfg.Routes[0], Backend: b, Log: log, Now: time.Now, FormKey: make([]byte, 32),
		Clients:   &clientid.Resolver{HTTP: ts.Client()},
		IdP:       &login.Provider{Issuer: base, ClientID: "p", ClientSecret: "s", HTTP: ts.Client()},
		Sessions:  &login.Sessions{Records: store.Records[login.Session]{B: b, NS: login.NSSessions}, Now: time.Now},
		Responder: &apierror.Responder{Log: log},
	})
	return s, b, base + "/client.json"
}

func get(s *Server, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://mcp.test"+path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	u, _ := url.Parse(path)
	s.Handler(u.Path).ServeHTTP(rec, r)
	return rec
}

// TestUnauthenticatedAuthorizeWritesNothing: a browser that is not signed
// in makes the proxy write nothing; the sign-in in flight travels in its
// cookie, and only that cookie finishes it.
func TestUnauthenticatedAuthorizeWritesNothing(t *testing.T) {
	s, b, clientID := loginServer(t)
	q := url.Values{"client_id": {clientID}, "redirect_uri": {"https://client.test/cb"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"client-state"}}
	rec := get(s, PathAuthorize+"?"+q.Encode())
	if rec.Code != http.StatusFound {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	if n := b.puts.Load(); n != 0 {
		t.Errorf("an authorization from a browser that is not signed in wrote %d records", n)
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	state := loc.Query().Get("state")
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != loginCookieName(state) || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("login cookie: %+v", cookies)
	}
	own := cookies[0]
	if len(own.Value) > maxLoginCookie {
		t.Errorf("login cookie of %d bytes", len(own.Value))
	}
	cb := PathLoginCB + "?state=" + state + "&error=access_denied"
	refused := "started in another browser"
	for name, c := range map[string]*http.Cookie{
		"no cookie":          nil,
		"another value":      {Name: own.Name, Value: "another-browser"},
		"tampered":           {Name: own.Name, Value: own.Value[:len(own.Value)-2] + "AA"},
		"another state's":    {Name: loginCookieName("other"), Value: own.Value},
		"sealed for another": sealedFor(t, s, "other", own.Name),
	} {
		var cs []*http.Cookie
		if c != nil {
			cs = append(cs, c)
		}
		if rec := get(s, cb, cs...); !strings.Contains(rec.Body.String(), refused) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	rec = get(s, cb, own)
	if body, _ := io.ReadAll(rec.Body); !strings.Contains(string(body), "did not sign you in: access_denied") {
		t.Errorf("the browser that started the sign-in: %d %s", rec.Code, body)
	}
}

// sealedFor is a cookie sealed for state's sign-in, renamed to name.
func sealedFor(t *testing.T, s *Server, state, name string) *http.Cookie {
	v, err := s.sealLogin(state, &LoginState{ReturnTo: PathConnections, Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: name, Value: v}
}

// TestExpiredLoginCookieIsRefused: the sealed expiry counts, whatever the
// cookie's own Max-Age.
func TestExpiredLoginCookieIsRefused(t *testing.T) {
	s, _, _ := loginServer(t)
	v, err := s.sealLogin("st", &LoginState{ReturnTo: PathConnections, Expires: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(s, PathLoginCB+"?state=st&error=access_denied", &http.Cookie{Name: loginCookieName("st"), Value: v})
	if !strings.Contains(rec.Body.String(), "expired") || rec.Code != http.StatusBadRequest {
		t.Errorf("an expired sign-in: %d %s", rec.Code, rec.Body)
	}
}

// TestOversizedRequestIsRefusedBeforeSignIn: a request too large for the
// cookie is refused on the proxy's page, not silently lost by the browser.
func TestOversizedRequestIsRefusedBeforeSignIn(t *testing.T) {
	s, b, clientID := loginServer(t)
	q := url.Values{"client_id": {clientID}, "redirect_uri": {"https://client.test/cb"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {strings.Repeat("s", 4000)}}
	rec := get(s, PathAuthorize+"?"+q.Encode())
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "too large to keep while you sign in") {
		t.Errorf("oversized: %d %s", rec.Code, rec.Body)
	}
	if n := b.puts.Load(); n != 0 {
		t.Errorf("wrote %d records", n)
	}
}
