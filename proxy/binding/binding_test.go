package binding

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// TestResolveKeepsTheRequest: the binding step hands the grant's key on
// through the grant's own context value, without a copy of the request,
// and refuses a key of another route.
func TestResolveKeepsTheRequest(t *testing.T) {
	const route = "mcp.example.com"
	toks := &bearer.Tokens{Records: store.Records[bearer.AccessToken]{B: store.NewMemory(), NS: bearer.NSAccess}, Now: time.Now}
	rs := &apierror.Responder{Log: slog.New(slog.DiscardHandler)}
	meta := func(string) string { return "https://" + route + "/.well-known/oauth-protected-resource" }
	key := Key(config.BindingPerUser, route, "alice", "", "https://remote-mcp.provider.com/mcp")
	issue := func(bindingKey string) string {
		tok, err := toks.Issue(context.Background(), &bearer.Grant{ID: "g", Route: route, Subject: "alice", BindingKey: bindingKey}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var got string
	var allocs float64
	var inner *http.Request
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, inner = KeyFromContext(r.Context()), r })
	resolve := Resolve(config.BindingPerUser, route, rs, next)
	h := bearer.Require(toks, route, meta, rs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if KeyFromContext(r.Context()) != "" {
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

	got = ""
	r = httptest.NewRequest(http.MethodPost, "https://"+route+"/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+issue(Key(config.BindingPerUser, "other.example.com", "alice", "", "x")))
	w = httptest.NewRecorder()
	bearer.Require(toks, route, meta, rs, resolve).ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError || got != "" {
		t.Errorf("another route's key: status %d, key %q; want 500 and none", w.Code, got)
	}
}
