package binding

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// TestResolveKeepsTheRequest: the binding step records the grant's key in
// the request scope without a copy of the request or an allocation, and a
// key of another route or another binding mode never reaches the token
// step: the client gets the route's 401 challenge and authorizes again.
func TestResolveKeepsTheRequest(t *testing.T) {
	const route = "mcp.example.com"
	rc := configtest.Route(t, "https://remote-mcp.provider.com", "{}")
	toks := &bearer.Tokens{Records: store.Records[bearer.AccessToken]{B: store.NewMemory(), NS: bearer.NSAccess}, Now: time.Now}
	rs := &apierror.Responder{Log: slog.New(slog.DiscardHandler)}
	key := Key(config.BindingPerUser, route, "alice", "", "https://remote-mcp.provider.com/mcp")
	issue := func(bindingKey string) string {
		tok, err := toks.Issue(context.Background(), &request.Grant{ID: "g", Route: route, Subject: "alice", BindingKey: bindingKey}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var got string
	var allocs float64
	var inner *http.Request
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, inner = request.From(r.Context()).BindingKey, r })
	resolve := Resolve(rc, rs, next)
	h := bearer.Require(toks, rc, rs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if request.From(r.Context()).BindingKey != "" {
			t.Error("a key before the binding step")
		}
		resolve.ServeHTTP(w, r)
		if inner != r {
			t.Error("the binding step copied the request")
		}
		allocs = testing.AllocsPerRun(100, func() { resolve.ServeHTTP(w, r) })
	}))

	r := httptest.NewRequest(http.MethodPost, "https://"+route+"/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+issue(key))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || got != key {
		t.Fatalf("status %d, key %q; want 200 and %q", w.Code, got, key)
	}
	if allocs != 0 {
		t.Errorf("the binding step allocates %.0f times per request, want 0", allocs)
	}

	for name, other := range map[string]string{
		"another route's key": Key(config.BindingPerUser, "other.example.com", "alice", "", "x"),
		// The operator changed the route from per_session to per_user: the
		// grant's key is of the old mode.
		"another mode's key": Key(config.BindingPerSession, route, "alice", "s1", "https://remote-mcp.provider.com/mcp"),
	} {
		got = ""
		r = httptest.NewRequest(http.MethodPost, "https://"+route+"/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+issue(other))
		w = httptest.NewRecorder()
		bearer.Require(toks, rc, rs, resolve).ServeHTTP(w, r)
		challenge := w.Header().Get("WWW-Authenticate")
		if w.Code != http.StatusUnauthorized || got != "" || !strings.Contains(challenge, `error="invalid_token"`) ||
			!strings.Contains(challenge, `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("%s: status %d, key %q, WWW-Authenticate %q; want 401 with the route's invalid_token challenge and no key", name, w.Code, got, challenge)
		}
	}
}
