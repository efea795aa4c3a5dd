package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// TestWrongMethodsAnswerTheCatalog: every endpoint of the proxy answers a
// method it does not take with the catalog's method_not_allowed, an Allow
// header and the request id, never a bare text/plain line.
func TestWrongMethodsAnswerTheCatalog(t *testing.T) {
	p, _ := newTestProxy(t, "")
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/.well-known/oauth-protected-resource/mcp", "GET"},
		{http.MethodDelete, "/.well-known/oauth-authorization-server", "GET"},
		{http.MethodPut, "/.mcp-proxy/client-metadata.json", "GET"},
		{http.MethodPost, "/.mcp-proxy/authorize", "GET"},
		{http.MethodGet, "/.mcp-proxy/token", "POST"},
		{http.MethodGet, "/.mcp-proxy/consent", "POST"},
		{http.MethodPost, "/.mcp-proxy/connections", "GET"},
		{http.MethodGet, "/.mcp-proxy/connections/disconnect", "POST"},
	} {
		rec := do(p, httptest.NewRequest(tc.method, "https://mcp.test"+tc.path, nil))
		id := rec.Header().Get("X-Request-Id")
		body := rec.Body.String()
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tc.allow || id == "" ||
			!strings.Contains(body, "method_not_allowed") || !strings.Contains(body, id) {
			t.Errorf("%s %s: %d Allow=%q %s %s", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"),
				rec.Header().Get("Content-Type"), body)
		}
	}
}

// TestMetadataListsOnlyWhatTheProxyHas: no empty jwks_uri in the
// authorization server metadata (the proxy's tokens are opaque; RFC 8414
// makes the member optional, and an empty URL is not a URL).
func TestMetadataListsOnlyWhatTheProxyHas(t *testing.T) {
	p, _ := newTestProxy(t, "")
	rec := do(p, httptest.NewRequest(http.MethodGet, "https://mcp.test/.well-known/oauth-authorization-server", nil))
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if v == "" || v == nil {
			t.Errorf("metadata member %s is empty: %q", k, v)
		}
	}
}

// TestConnectionsJSONIsNotCached: the connections list is per user and
// must not be stored by any cache (RFC 9111 §5.2.2.5, "no-store").
func TestConnectionsJSONIsNotCached(t *testing.T) {
	p, _ := newTestProxy(t, "")
	sid := "session-of-alice"
	if err := p.putSession(sid, &authserverSession); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/connections", nil)
	r.Header.Set("Accept", "application/json")
	r.AddCookie(&http.Cookie{Name: "__Host-mcp-proxy-session", Value: sid})
	rec := do(p, r)
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("connections: %d Cache-Control %q %s", rec.Code, rec.Header().Get("Cache-Control"), rec.Body)
	}
}

// TestRemoteChallengeNeverReachesTheClient: on a route whose remote server
// needed no authorization, a 401 from it now becomes the proxy's own
// challenge, pointing at the proxy's metadata, never the remote server's.
func TestRemoteChallengeNeverReachesTheClient(t *testing.T) {
	up := &answer{status: http.StatusUnauthorized}
	p, now := newTestProxyWith(t, "", "", up, nil)
	g := &request.Grant{ID: "g", Route: "mcp.test", Subject: "alice", Upstream: "https://upstream.test/mcp"}
	if err := p.putAccessToken("down", &bearer.AccessToken{Grant: g, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader("{}"))
	r.Header.Set("Authorization", "Bearer down")
	rec := do(p, r)
	ch := rec.Header().Get("WWW-Authenticate")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(ch, `resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"`) ||
		strings.Contains(ch, "upstream.test") {
		t.Errorf("got %d, challenge %q", rec.Code, ch)
	}
}
