package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// cannedUpstream answers every request with one small JSON-RPC result.
type cannedUpstream struct{}

func (cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: 58,
		Body: io.NopCloser(strings.NewReader(`{"jsonrpc":"2.0","id":7,"result":{"content":[],"ok":true}}`)), Request: r}, nil
}

// twentyRules is a tool policy of 20 rules, none of which names the tool
// the benchmark calls: every request is read and checked against all.
func twentyRules() string {
	var b strings.Builder
	b.WriteString("    policy:\n      allow:\n        - users: [alice]\n      tools:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "        - names: [\"admin_%02d_*\"]\n          allow:\n            - groups: [admins]\n", i)
	}
	return b.String()
}

// BenchmarkWarmPathPolicy: the proxy's request path in process (no TLS, no
// network), a tools/call on a route without a policy and on one with 20
// tool rules: what reading, checking and deciding adds to a request.
func BenchmarkWarmPathPolicy(b *testing.B) {
	for _, tc := range []struct{ name, policy string }{{"none", ""}, {"twenty-rules", twentyRules()}} {
		b.Run(tc.name, func(b *testing.B) {
			p, now := newTestProxySource(b, testConfig("", tc.policy, ""), cannedUpstream{}, nil)
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
