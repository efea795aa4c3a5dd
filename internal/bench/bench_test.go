package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 50.
	line := []byte("4242 (mcp (proxy) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 0 0\n")
	got, err := parseStat(line)
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseStat = %v, %v; want 3s", got, err)
	}
	if _, err := parseStat([]byte("4242 (short) S 1 2")); err == nil {
		t.Error("a short line parsed")
	}
}

func TestProcessCPUOfSelf(t *testing.T) {
	if _, err := ProcessCPU(0); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
}

func TestRatiosAreOfPairs(t *testing.T) {
	// Each round's ratio first, then the median: a slow round of both
	// targets does not skew the ratio.
	a := []Sample{{RPS: 50}, {RPS: 10}, {RPS: 60}}
	b := []Sample{{RPS: 100}, {RPS: 20}, {RPS: 100}}
	if got := ratio(a, b, rps); got != 0.5 {
		t.Errorf("ratio = %v, want 0.5", got)
	}
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestChecks(t *testing.T) {
	cells := []Cell{{"canned", "h1", 16}, {"sdk", "h1", 64}}
	r := &Results{Opts: Options{Upstreams: []string{"sdk", "canned"}}, Cells: cells, Samples: map[Cell]map[string][]Sample{
		cells[0]: {Direct: {{RPS: 1000}}, BareHop: {{RPS: 400, HopCPU: 100}}, Proxy: {{RPS: 450, HopCPU: 70}}, ProxyPolicy: {{RPS: 440, HopCPU: 80}}},
		cells[1]: {Direct: {{RPS: 1000}}, BareHop: {{RPS: 700, HopCPU: 200}}, Proxy: {{RPS: 800, HopCPU: 150}}},
	}, ProxyRequests: map[string]int64{ProxyHost: 10, ProxyCannedHost: 10, ProxyPolicyHost: 0},
		CacheHits: map[string]float64{ProxyHost: 12, ProxyCannedHost: 9}, CacheOther: map[string]float64{}}
	var ok, missed []string
	for _, c := range r.Checks() {
		if c.OK {
			ok = append(ok, c.What)
		} else {
			missed = append(missed, c.What)
		}
	}
	want := []string{"canned h1 c=16: a 20-rule tool policy costs mcp-proxy 1.14x", "sdk h1 c=64: mcp-proxy 0.80x direct",
		ProxyCannedHost + ": 10 measured requests, 9 token cache hits", ProxyPolicyHost + ": 0 measured requests"}
	if len(missed) != len(want) {
		t.Fatalf("missed %q, want %d", missed, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(missed[i], w) {
			t.Errorf("missed[%d] = %q, want it to start %q", i, missed[i], w)
		}
	}
	if len(ok) != 2 || !strings.HasPrefix(ok[0], "canned h1 c=16: mcp-proxy CPU 0.70x") {
		t.Errorf("ok = %q", ok)
	}
}
