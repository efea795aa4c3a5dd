package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond}, // nearest rank: ⌈0.5·4⌉ = 2
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 1, 1 * time.Millisecond},
	} {
		if got := Percentile(c.vals, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.vals, c.p, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for msg, want := range map[string]string{
		`calling "tools/call": rejected by transport: sending "tools/call": Bad Gateway`:        "HTTP 502",
		`Post "https://mcp.example.com/mcp": dial tcp 127.0.0.1:1: connect: connection refused`: "connection",
		`sending "tools/call": 503 Service Unavailable`:                                         "HTTP 503",
		`calling "tools/call": connection closed`:                                               "session lost",
		`tools/call whoami: calling "tools/call": request terminated without response`:          "connection",
		`tool error: boom`: "tool error",
		`Post "https://mcp.example.com/mcp": context deadline exceeded (Client.Timeout exceeded while waiting)`: "timeout",
		`something else`: "other",
	} {
		if got := Classify(errors.New(msg)); got != want {
			t.Errorf("Classify(%q) = %q, want %q", msg, got, want)
		}
	}
	if got := Classify(fmt.Errorf("wrapped: %w", context.DeadlineExceeded)); got != "timeout" {
		t.Errorf("a wrapped deadline is %q, want timeout", got)
	}
	if Classify(nil) != "" {
		t.Error("a nil error has a kind")
	}
}

func TestSummarize(t *testing.T) {
	s := time.Second
	recs := []Record{
		{Client: 1, At: 0, Took: 10 * time.Millisecond},
		{Client: 1, At: 1 * s, Kind: "HTTP 502", Valid: true},
		{Client: 1, At: 2 * s, Took: 30 * time.Millisecond}, // client 1 recovers
		{Client: 2, At: 1 * s, Took: 20 * time.Millisecond},
		{Client: 2, At: 3 * s, Kind: "connection"}, // client 2 never does
		{Client: 2, At: 4 * s, Kind: "connection"},
	}
	got := Summarize(recs, 2*s)
	if got.Requests != 6 || got.Errors != 3 || got.ErrorsByKind["connection"] != 2 || got.ErrorsByKind["HTTP 502"] != 1 {
		t.Errorf("counts: %+v", got)
	}
	if got.ClientsFailed != 2 || got.Unrecovered != 1 {
		t.Errorf("clients failed %d, unrecovered %d; want 2 and 1", got.ClientsFailed, got.Unrecovered)
	}
	if got.ValidFailures != 1 {
		t.Errorf("valid failures %d, want 1", got.ValidFailures)
	}
	if got.FirstError != s || got.LastError != 4*s {
		t.Errorf("failures from %v to %v, want 1s to 4s", got.FirstError, got.LastError)
	}
	if got.P50 != 20*time.Millisecond || got.P99 != 30*time.Millisecond || got.Max != 30*time.Millisecond || got.RPS != 1.5 {
		t.Errorf("latency p50 %v p99 %v max %v rps %v", got.P50, got.P99, got.Max, got.RPS)
	}
	if k := got.Kinds(); len(k) != 2 || k[0] != "connection" {
		t.Errorf("kinds %v: the most frequent first", k)
	}
}

func TestLeakRule(t *testing.T) {
	r := LeakRule{GoroutineSlack: 10, HeapFactor: 2, HeapSlack: 1 << 20}
	before := Snapshot{Goroutines: 100, HeapInuse: 8 << 20}
	for _, c := range []struct {
		after Snapshot
		leak  string
	}{
		{Snapshot{Goroutines: 100, HeapInuse: 8 << 20}, ""},
		{Snapshot{Goroutines: 110, HeapInuse: 17 << 20}, ""},
		{Snapshot{Goroutines: 90, HeapInuse: 1 << 20}, ""},
		{Snapshot{Goroutines: 111, HeapInuse: 8 << 20}, "goroutines grew from 100 to 111"},
		{Snapshot{Goroutines: 100, HeapInuse: 18 << 20}, "the heap in use grew from 8.0 MiB to 18.0 MiB"},
	} {
		err := r.Check(before, c.after)
		switch {
		case c.leak == "" && err != nil:
			t.Errorf("%+v: %v", c.after, err)
		case c.leak != "" && (err == nil || !strings.Contains(err.Error(), c.leak)):
			t.Errorf("%+v: %v, want %q", c.after, err, c.leak)
		}
	}
}

// fakeProxy serves the Go and process collectors' figures as the proxy's
// admin listener does; every scrape, goroutines grow by leak.
func fakeProxy(t *testing.T, goroutines int, leak int64) MetricsFunc {
	var n atomic.Int64
	n.Store(int64(goroutines))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g := n.Add(leak)
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", g)
		fmt.Fprintf(w, "# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes %d\n", 8<<20)
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n", 30<<20)
		fmt.Fprint(w, "# TYPE mcp_proxy_token_refreshes_total counter\n"+
			`mcp_proxy_token_refreshes_total{result="success",route="a"} 3`+"\n"+
			`mcp_proxy_token_refreshes_total{result="success",route="b"} 4`+"\n"+
			`mcp_proxy_token_refreshes_total{result="failed",route="a"} 1`+"\n")
	}))
	t.Cleanup(srv.Close)
	return func() (map[string]*dto.MetricFamily, error) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		return p.TextToMetricFamilies(resp.Body)
	}
}

// The leak check fails on a proxy whose goroutines keep growing, and
// passes on one whose count holds.
func TestLeakCheckOnFakes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		leak int64
		want bool
	}{{"steady", 0, false}, {"leaking", 100, true}} {
		scrape := fakeProxy(t, 120, c.leak)
		before, err := Settle(ctx, scrape, time.Millisecond, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		// The load ran in between.
		after, err := Settle(ctx, scrape, time.Millisecond, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		err = DefaultLeakRule.Check(before, after)
		if got := err != nil; got != c.want {
			t.Errorf("%s proxy: before %+v, after %+v: leak %v, want a leak: %v", c.name, before, after, err, c.want)
		}
	}
}

func TestCounterBy(t *testing.T) {
	got, err := CounterBy(fakeProxy(t, 1, 0), "mcp_proxy_token_refreshes_total", "result")
	if err != nil {
		t.Fatal(err)
	}
	if got["success"] != 7 || got["failed"] != 1 || len(got) != 2 {
		t.Errorf("CounterBy = %v, want success 7 (two routes), failed 1", got)
	}
	d := Delta(map[string]float64{"success": 2}, got)
	if d["success"] != 5 || d["failed"] != 1 {
		t.Errorf("Delta = %v", d)
	}
	if c := Counts(d); c != "success 5, failed 1" {
		t.Errorf("Counts = %q", c)
	}
	if c := Counts(map[string]float64{"a": 0}); c != "none" {
		t.Errorf("Counts of zeros = %q", c)
	}
}

func TestTakeNamesWhatIsMissing(t *testing.T) {
	_, err := Take(func() (map[string]*dto.MetricFamily, error) { return map[string]*dto.MetricFamily{}, nil })
	if err == nil || !strings.Contains(err.Error(), "go_goroutines") {
		t.Errorf("Take without the Go collector: %v", err)
	}
}

func TestMarkValid(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := time.Second
	issues := map[int][]Issue{
		1: {{At: start, TTL: 10 * s}, {At: start.Add(8 * s), TTL: 10 * s}}, // refreshed at 8 s: valid to 18 s
		2: {{At: start, TTL: 10 * s}},                                      // never refreshed: valid to 10 s
	}
	recs := []Record{
		{Client: 1, At: 5 * s, Kind: "HTTP 502"},                      // valid (first token)
		{Client: 1, At: 15 * s, Kind: "HTTP 502"},                     // valid (the refreshed one)
		{Client: 1, At: 18 * s, Kind: "HTTP 502"},                     // expired
		{Client: 1, At: 6 * s},                                        // a success is never marked
		{Client: 2, At: 9*s + 600*time.Millisecond, Kind: "HTTP 502"}, // within the margin of expiry: not counted
		{Client: 2, At: 12 * s, Kind: "HTTP 502"},                     // expired
		{Client: 3, At: 1 * s, Kind: "HTTP 502"},                      // no token known
	}
	MarkValid(recs, start, issues, 500*time.Millisecond)
	want := []bool{true, true, false, false, false, false, false}
	for i, r := range recs {
		if r.Valid != want[i] {
			t.Errorf("record %d (%+v): valid %v, want %v", i, r, r.Valid, want[i])
		}
	}
}
