package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/forward"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// answer is a RoundTripper standing in for the remote MCP server.
type answer struct{ status int }

func (a *answer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	if a.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer resource_metadata="https://upstream.test/.well-known/oauth-protected-resource/mcp"`)
	}
	if a.status == http.StatusForbidden {
		h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="files:write", resource_metadata="https://upstream.test/.well-known/oauth-protected-resource/mcp"`)
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

// TestStepUpIsBounded: each insufficient_scope answer becomes the proxy's
// own insufficient_scope challenge, three times in a row at most; then the
// proxy stops asking. A successful answer starts the count again.
func TestStepUpIsBounded(t *testing.T) {
	up := &answer{status: http.StatusForbidden}
	p, now := newTestProxyWith(t, "", "", up, nil)
	rt := p.current().routes["mcp.test"]
	ctx := context.Background()
	key := rt.bindingKey("alice", "", "https://upstream.test/mcp")
	if err := rt.tokens.Put(ctx, &upstream.Token{Key: key, AccessToken: "up", Grant: upstream.Grant{Resource: "https://upstream.test/mcp"},
		Subject: "alice", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	g := &request.Grant{ID: "g", Route: "mcp.test", Subject: "alice", BindingKey: key}
	if err := p.putAccessToken("down", &bearer.AccessToken{Grant: g, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	call := func() (int, string, string) {
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader("{}"))
		r.Header.Set("Authorization", "Bearer down")
		rec := do(p, r)
		var b struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &b)
		return rec.Code, b.Error, rec.Header().Get("WWW-Authenticate")
	}
	for i := 1; i <= forward.MaxStepUps; i++ {
		code, e, ch := call()
		if code != http.StatusForbidden || e != "insufficient_scope" || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="files:write"`) {
			t.Fatalf("step-up %d: %d %s %s", i, code, e, ch)
		}
		// The challenge points at the proxy, never at the remote server.
		if !strings.Contains(ch, `resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("step-up %d: challenge %s", i, ch)
		}
	}
	if code, e, _ := call(); code != http.StatusForbidden || e != "upstream_scope_exhausted" {
		t.Fatalf("after %d step-ups: %d %s, want upstream_scope_exhausted", forward.MaxStepUps, code, e)
	}
	up.status = http.StatusOK
	if code, _, _ := call(); code != http.StatusOK {
		t.Fatalf("a good answer: %d", code)
	}
	up.status = http.StatusForbidden
	if code, e, _ := call(); e != "insufficient_scope" {
		t.Errorf("after a good answer the count did not start again: %d %s", code, e)
	}
}
