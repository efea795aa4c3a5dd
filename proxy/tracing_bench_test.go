package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkWarmPathTracing: the proxy's request path in process (no TLS,
// no network), a tools/call with tracing off, on with a ratio that leaves
// every request out, and on with every request traced (spans to an
// exporter that drops them): what a span per request and its children
// cost, and that tracing off costs nothing (compare "off" with
// BenchmarkWarmPathPolicy/none, and its allocations with the same
// benchmark before tracing existed).
func BenchmarkWarmPathTracing(b *testing.B) {
	for _, tc := range []struct{ name, block string }{
		{"off", ""},
		{"ratio-0", "tracing: {endpoint: https://otel.test:4318, sampling_ratio: 0}"},
		{"ratio-1", "tracing: {endpoint: https://otel.test:4318, sampling_ratio: 1}"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p, now := newTestProxyOptions(b, testConfig(tc.block, "", ""), Options{Transport: cannedUpstream{}, SpanExporter: tracetest.NewNoopExporter()}, nil)
			pp := &policyProxy{p: p, now: now}
			pp.putUpstreamTokens(b)
			tok := pp.token(b, pp.identity("alice"))
			body := call("echo")
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set("Content-Type", "application/json")
				if rec := do(p, r); rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
