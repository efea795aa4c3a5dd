package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// The secrets of the traced test proxy's requests: none may appear in a
// span.
const (
	traceDownstream   = "down-token-of-alice-0123456789"
	traceUpstreamOld  = "up-access-expired-0123456789"
	traceRefresh      = "up-refresh-0123456789"
	traceUpstreamNew  = "up-access-refreshed-0123456789"
	traceRefreshNew   = "up-refresh-rotated-0123456789"
	traceCallbackCode = "callback-code-0123456789"
	traceCallbackSt   = "callback-state-0123456789"
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID      = "00f067aa0ba902b7"
)

// tracedRemote stands in for the remote authorization server (a refresh
// answer at as.test) and the remote MCP server (upstream.test), and keeps
// the traceparent headers the MCP server received.
type tracedRemote struct {
	mu           sync.Mutex
	traceparents []string
	// down makes the remote MCP server unreachable.
	down bool
}

func (tr *tracedRemote) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	h := http.Header{"Content-Type": {"application/json"}}
	if r.URL.Host == "as.test" {
		if !strings.Contains(string(b), traceRefresh) {
			return &http.Response{StatusCode: 400, Header: h, Body: io.NopCloser(strings.NewReader(`{"error":"invalid_grant"}`)), Request: r}, nil
		}
		body := `{"access_token":"` + traceUpstreamNew + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + traceRefreshNew + `"}`
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	tr.mu.Lock()
	tr.traceparents = append(tr.traceparents, r.Header.Get("Traceparent"))
	down := tr.down
	tr.mu.Unlock()
	if down {
		return nil, fmt.Errorf("connection refused")
	}
	body := `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func (tr *tracedRemote) received() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.traceparents...)
}

// tracedProxy runs a proxy with the tracing block block, its spans in exp,
// in front of a tracedRemote; alice's remote token has expired, so her
// first call refreshes it.
func tracedProxy(t *testing.T, block string) (*Proxy, *tracedRemote, *tracetest.InMemoryExporter) {
	t.Helper()
	remote, exp := &tracedRemote{}, tracetest.NewInMemoryExporter()
	p, now := newTestProxyOptions(t, testConfig(block, "", ""), Options{Transport: remote, SpanExporter: exp}, nil)
	pp := &policyProxy{p: p, now: now}
	rt := p.current().routes["mcp.test"]
	key := rt.bindingKey("alice", "", "https://upstream.test/mcp")
	if err := rt.tokens.Put(context.Background(), &upstream.Token{Key: key, AccessToken: traceUpstreamOld, RefreshToken: traceRefresh,
		Grant:   upstream.Grant{Resource: "https://upstream.test/mcp", TokenURL: "https://as.test/token", ClientID: "proxy"},
		Subject: "alice", Issued: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	id := pp.identity("alice")
	g := pp.token(t, id)
	// The downstream token under a known value, to look for it in spans.
	at, err := p.accessToken(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.putAccessToken(traceDownstream, at); err != nil {
		t.Fatal(err)
	}
	return p, remote, exp
}

func tracedCall(traceparent string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(call("echo")))
	r.Header.Set("Authorization", "Bearer "+traceDownstream)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Mcp-Session-Id", "session-1")
	r.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if traceparent != "" {
		r.Header.Set("Traceparent", traceparent)
	}
	return r
}

func flushed(t *testing.T, p *Proxy, exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	t.Helper()
	if err := p.tracer.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans()
}

func attrOf(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var names []string
	for _, s := range spans {
		if s.Name == name && s.SpanKind == kind {
			return s
		}
		names = append(names, fmt.Sprintf("%q (%s)", s.Name, s.SpanKind))
	}
	t.Fatalf("no %s span %q among %s", kind, name, strings.Join(names, ", "))
	return tracetest.SpanStub{}
}

// TestTracingAToolCall: a tools/call that continues the MCP client's trace
// gets the request's span with the MCP attributes, its token step with
// the refresh it waited for, and the call to the remote server, whose
// traceparent names that last span.
func TestTracingAToolCall(t *testing.T) {
	p, remote, exp := tracedProxy(t, "tracing: {endpoint: https://otel.test:4318, sampling_ratio: 0.25}")
	rec := do(p, tracedCall("00-"+clientTraceID+"-"+clientSpanID+"-01"))
	if rec.Code != 200 {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	spans := flushed(t, p, exp)

	req := spanNamed(t, spans, "tools/call echo", trace.SpanKindServer)
	if got := req.SpanContext.TraceID().String(); got != clientTraceID {
		t.Errorf("the request's trace is %s, want the client's %s", got, clientTraceID)
	}
	if got := req.Parent.SpanID().String(); got != clientSpanID || !req.Parent.IsRemote() {
		t.Errorf("the request's parent is %s (remote %v), want the client's span %s", got, req.Parent.IsRemote(), clientSpanID)
	}
	for k, want := range map[attribute.Key]string{
		tracing.MCPMethodName: "tools/call", tracing.GenAIToolName: "echo", tracing.JSONRPCRequestID: "7",
		tracing.GenAIOperationName: "execute_tool", tracing.MCPSessionID: "session-1", tracing.MCPProtocolVersion: "2025-11-25",
		tracing.Route: "mcp.test", tracing.HTTPRequestMethod: "POST", tracing.HTTPResponseStatusCode: "200",
		tracing.URLPath: "/mcp", tracing.ServerAddress: "mcp.test",
	} {
		if got := attrOf(req, k); got != want {
			t.Errorf("request span %s = %q, want %q", k, got, want)
		}
	}
	if attrOf(req, tracing.RequestID) != rec.Header().Get("X-Request-Id") {
		t.Errorf("request span request id %q, the answer's %q", attrOf(req, tracing.RequestID), rec.Header().Get("X-Request-Id"))
	}

	tok := spanNamed(t, spans, tracing.SpanUpstreamToken, trace.SpanKindInternal)
	ref := spanNamed(t, spans, tracing.SpanUpstreamRefresh, trace.SpanKindInternal)
	up := spanNamed(t, spans, "tools/call echo", trace.SpanKindClient)
	for _, c := range []struct {
		child, parent tracetest.SpanStub
	}{{tok, req}, {ref, tok}, {up, req}} {
		if c.child.Parent.SpanID() != c.parent.SpanContext.SpanID() || c.child.SpanContext.TraceID() != req.SpanContext.TraceID() {
			t.Errorf("span %q is not a child of %q", c.child.Name, c.parent.Name)
		}
	}
	if got := attrOf(tok, tracing.TokenCache); got != "refresh" {
		t.Errorf("token step cache = %q, want refresh", got)
	}
	if got := attrOf(ref, tracing.RefreshResult); got != "success" {
		t.Errorf("refresh result = %q, want success", got)
	}
	if got, want := attrOf(up, tracing.ServerAddress)+" "+attrOf(up, tracing.HTTPResponseStatusCode)+" "+attrOf(up, tracing.MCPMethodName)+" "+attrOf(up, tracing.MCPSessionID),
		"upstream.test 200 tools/call session-1"; got != want {
		t.Errorf("upstream call: %q, want %q", got, want)
	}
	want := "00-" + clientTraceID + "-" + up.SpanContext.SpanID().String() + "-01"
	if got := remote.received(); len(got) != 1 || got[0] != want {
		t.Errorf("the remote server received traceparent %q, want %q (the upstream call's span)", got, want)
	}
}

// TestTracingCarriesNoSecret scans every span the proxy exported, its
// name, attributes, events, status and resource, for the tokens, codes and
// state of its requests: a tool call that refreshed the remote token, and
// a callback whose query holds a code.
func TestTracingCarriesNoSecret(t *testing.T) {
	p, _, exp := tracedProxy(t, "tracing:\n  endpoint: https://otel.test:4318\n  headers: {x-api-key: header-secret-0123456789}")
	if rec := do(p, tracedCall("")); rec.Code != 200 {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	cb := httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/upstream/callback?code="+traceCallbackCode+"&state="+traceCallbackSt, nil)
	do(p, cb)
	spans := flushed(t, p, exp)
	if len(spans) < 5 {
		t.Fatalf("only %d spans exported", len(spans))
	}
	secrets := []string{traceDownstream, traceUpstreamOld, traceRefresh, traceUpstreamNew, traceRefreshNew, traceCallbackCode, traceCallbackSt, "header-secret-0123456789"}
	for _, s := range spans {
		text := []string{s.Name, s.Status.Description}
		for _, kv := range append(append([]attribute.KeyValue(nil), s.Attributes...), s.Resource.Attributes()...) {
			text = append(text, string(kv.Key), kv.Value.String())
		}
		for _, e := range s.Events {
			text = append(text, e.Name)
			for _, kv := range e.Attributes {
				text = append(text, string(kv.Key), kv.Value.String())
			}
		}
		all := strings.Join(text, "\x00")
		for _, secret := range secrets {
			if strings.Contains(all, secret) {
				t.Errorf("span %q carries the secret %s…", s.Name, secret[:12])
			}
		}
	}
}

// TestTracingSampling: a request the ratio leaves out exports nothing,
// yet the remote server still gets the trace context (not sampled); a
// client's sampled traceparent is followed whatever the ratio.
func TestTracingSampling(t *testing.T) {
	p, remote, exp := tracedProxy(t, "tracing: {endpoint: https://otel.test:4318, sampling_ratio: 0}")
	if rec := do(p, tracedCall("")); rec.Code != 200 {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	if spans := flushed(t, p, exp); len(spans) != 0 {
		t.Errorf("sampling_ratio 0 exported %d spans", len(spans))
	}
	got := remote.received()
	if len(got) != 1 || !strings.HasPrefix(got[0], "00-") || !strings.HasSuffix(got[0], "-00") {
		t.Errorf("the remote server received traceparent %q, want one not sampled", got)
	}
	if rec := do(p, tracedCall("00-"+clientTraceID+"-"+clientSpanID+"-01")); rec.Code != 200 {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	spans := flushed(t, p, exp)
	req := spanNamed(t, spans, "tools/call echo", trace.SpanKindServer)
	if req.SpanContext.TraceID().String() != clientTraceID {
		t.Errorf("the sampled client's trace was not continued: %s", req.SpanContext.TraceID())
	}
}

// TestTracingOffPassesTraceparent: without tracing, the proxy starts no
// span and the client's traceparent reaches the remote server as sent.
func TestTracingOffPassesTraceparent(t *testing.T) {
	remote := &tracedRemote{}
	p, now := newTestProxySource(t, testConfig("", "", ""), remote, nil)
	if p.tracer != nil {
		t.Fatal("tracing is on without a tracing block")
	}
	pp := &policyProxy{p: p, now: now}
	rt := p.current().routes["mcp.test"]
	if err := rt.tokens.Put(context.Background(), &upstream.Token{Key: rt.bindingKey("alice", "", "https://upstream.test/mcp"),
		AccessToken: "up", Subject: "alice", Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sent := "00-" + clientTraceID + "-" + clientSpanID + "-01"
	r := tracedCall(sent)
	r.Header.Set("Authorization", "Bearer "+pp.token(t, pp.identity("alice")))
	if rec := do(p, r); rec.Code != 200 {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	if got := remote.received(); len(got) != 1 || got[0] != sent {
		t.Errorf("the remote server received traceparent %q, want the client's %q", got, sent)
	}
}

// TestTracingRecordsTheErrorCode: a request the proxy answers with an
// error of its catalog has the code as error.type, on its span and on the
// failed upstream call's.
func TestTracingRecordsTheErrorCode(t *testing.T) {
	p, remote, exp := tracedProxy(t, "tracing: {endpoint: https://otel.test:4318}")
	remote.down = true
	if rec := do(p, tracedCall("")); rec.Code != http.StatusBadGateway {
		t.Fatalf("answer %d: %s", rec.Code, rec.Body)
	}
	spans := flushed(t, p, exp)
	req := spanNamed(t, spans, "tools/call echo", trace.SpanKindServer)
	up := spanNamed(t, spans, "tools/call echo", trace.SpanKindClient)
	for _, s := range []tracetest.SpanStub{req, up} {
		if got := attrOf(s, tracing.ErrorType); got != "upstream_unreachable" {
			t.Errorf("%s span error.type = %q, want upstream_unreachable", s.SpanKind, got)
		}
	}
	if req.Status.Code.String() != "Error" || attrOf(req, tracing.HTTPResponseStatusCode) != "502" {
		t.Errorf("request span status %v, code %s", req.Status, attrOf(req, tracing.HTTPResponseStatusCode))
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
