package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The receiver counts the spans of an OTLP/HTTP export, and the request
// spans among them; anything else is refused.
func TestTraceReceiverCounts(t *testing.T) {
	rc := &traceReceiver{}
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{Name: "tools/call echo", Kind: tracepb.Span_SPAN_KIND_SERVER},
			{Name: "upstream token", Kind: tracepb.Span_SPAN_KIND_INTERNAL},
			{Name: "tools/call echo", Kind: tracepb.Span_SPAN_KIND_CLIENT},
		}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	rc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/traces", bytes.NewReader(b)))
	if rec.Code != http.StatusOK {
		t.Fatalf("export answered %d: %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	rc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/traces", bytes.NewReader([]byte("not protobuf {"))))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a body that is not OTLP answered %d", rec.Code)
	}
	if got, want := rc.count(), (TraceCount{Exports: 1, Spans: 3, ServerSpans: 1}); got != want {
		t.Errorf("count = %+v, want %+v", got, want)
	}
	rc.reset()
	if got := rc.count(); got != (TraceCount{}) {
		t.Errorf("after reset: %+v", got)
	}
}

// The trace checks pass at the ratio's share of request spans and miss
// away from it: a traced proxy whose spans did not all arrive is a MISS.
func TestTraceChecks(t *testing.T) {
	for _, c := range []struct {
		ratio    string
		server   int64
		requests float64
		ok       bool
	}{
		{"0.1", 98, 1000, true},
		{"0.1", 0, 1000, false},
		{"0.1", 500, 1000, false},
		{"1.0", 1001, 1000, true},
		{"1.0", 600, 1000, false},
	} {
		host := Trace10Host
		if c.ratio == "1.0" {
			host = Trace100Host
		}
		r := &Results{Traces: map[string]TraceCount{host: {Ratio: c.ratio, Requests: c.requests, ServerSpans: c.server}}}
		checks := r.TraceChecks()
		if len(checks) != 1 || checks[0].OK != c.ok {
			t.Errorf("ratio %s, %d request spans for %.0f requests: %+v, want ok=%v", c.ratio, c.server, c.requests, checks, c.ok)
		}
	}
}

// -targets chooses what a run measures; the policy and tracing routes
// lead to the canned answer only.
func TestOptionsMeasures(t *testing.T) {
	all := Options{}
	only := Options{Targets: []string{Proxy, ProxyTrace10, ProxyTrace100}}
	for _, c := range []struct {
		o                Options
		upstream, target string
		want             bool
	}{
		{all, "sdk", Direct, true},
		{all, "sdk", ProxyPolicy, false},
		{all, "sdk", ProxyTrace100, false},
		{all, "canned", ProxyTrace10, true},
		{only, "canned", Direct, false},
		{only, "canned", ProxyTrace100, true},
		{only, "sdk", Proxy, true},
	} {
		if got := c.o.measures(c.upstream, c.target); got != c.want {
			t.Errorf("targets %v: measures(%s, %s) = %v, want %v", c.o.Targets, c.upstream, c.target, got, c.want)
		}
	}
}
