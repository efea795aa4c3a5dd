package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
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

// ProcessCPU of this process agrees with what the kernel reports through
// getrusage, before and after burning some CPU, by pid 0 and by its own
// pid; a pid with no process is an error.
func TestProcessCPUOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ProcessCPU reads /proc, which only Linux has; make bench runs on Linux")
	}
	spin := func(d time.Duration) {
		// Busy for d of this process's CPU time, read from getrusage.
		for start := rusageCPU(t); rusageCPU(t)-start < d; {
			for i := 0; i < 1e5; i++ {
				sink += i
			}
		}
	}
	spin(10 * time.Millisecond)
	for _, pid := range []int{0, os.Getpid()} {
		before := rusageCPU(t)
		got, err := ProcessCPU(pid)
		after := rusageCPU(t)
		if err != nil {
			t.Fatalf("ProcessCPU(%d): %v", pid, err)
		}
		// /proc counts user and system time in clock ticks, each truncated:
		// allow a tick below for each.
		if got < before-2*time.Second/clockTicks || got > after {
			t.Errorf("ProcessCPU(%d) = %v, want between %v and %v (getrusage)", pid, got, before, after)
		}
		spin(200 * time.Millisecond)
		later, err := ProcessCPU(pid)
		if err != nil {
			t.Fatalf("ProcessCPU(%d): %v", pid, err)
		}
		if later-got < 150*time.Millisecond {
			t.Errorf("ProcessCPU(%d) moved %v across 200ms of CPU, want at least 150ms", pid, later-got)
		}
	}
	if got, err := ProcessCPU(1 << 30); err == nil {
		t.Errorf("ProcessCPU of a pid with no process = %v, nil; want an error", got)
	}
}

var sink int

// rusageCPU is this process's user plus system CPU time from getrusage,
// which does not read /proc.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	cells := []Cell{{"canned", "h1", 16}, {"canned", "h2", 16}, {"sdk", "h1", 64}}
	r := &Results{Opts: Options{Upstreams: []string{"sdk", "canned"}}, Cells: cells, Samples: map[Cell]map[string][]Sample{
		cells[0]: {Direct: {{RPS: 1000}}, PooledHop: {{RPS: 400, HopCPU: 100}}, Proxy: {{RPS: 450, HopCPU: 105}},
			ProxyPolicy: {{RPS: 440, HopCPU: 120}}, Caddy: {{RPS: 300, HopCPU: 180}}},
		cells[1]: {Direct: {{RPS: 1000}}, PooledHop: {{RPS: 400, HopCPU: 110}}, Proxy: {{RPS: 450, HopCPU: 130}},
			Caddy: {{RPS: 300, HopCPU: 120}}},
		cells[2]: {Direct: {{RPS: 1000}}, PooledHop: {{RPS: 700, HopCPU: 200}}, Proxy: {{RPS: 800, HopCPU: 150}}},
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
	want := []string{"canned HTTP/1.1 c=16: a 20-rule tool policy costs mcp-proxy 1.14x",
		"canned HTTP/2 c=16: mcp-proxy CPU 1.18x the pooled hop's", "canned HTTP/2 c=16: mcp-proxy CPU 130 us, Caddy's 120 us",
		"canned c=16: HTTP/2 over HTTP/1.1 costs mcp-proxy +25 us, the pooled hop +10 us",
		ProxyCannedHost + ": 10 measured requests, 9 token cache hits", ProxyPolicyHost + ": 0 measured requests"}
	if len(missed) != len(want) {
		t.Fatalf("missed %q, want %d", missed, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(missed[i], w) {
			t.Errorf("missed[%d] = %q, want it to start %q", i, missed[i], w)
		}
	}
	if len(ok) != 3 || ok[0] != `canned HTTP/1.1 c=16: mcp-proxy CPU 1.05x the pooled hop's (budget <= 1.10x; against "pooled hop", the only pooled target measured)` ||
		!strings.HasPrefix(ok[1], "canned HTTP/1.1 c=16: mcp-proxy CPU 105 us, Caddy's 180 us") {
		t.Errorf("ok = %q", ok)
	}
}

func TestStreamsChecks(t *testing.T) {
	open := StreamsOpened{Opened: 100}
	rows := []StreamsRow{
		{Proto: "h2", Target: PooledHop, N: 100, Opened: open, RSSBefore: 0, RSSAfter: 100 * 90 << 10},
		{Proto: "h2", Target: Proxy, N: 100, Opened: open, RSSBefore: 10 << 20, RSSAfter: 10<<20 + 100*40<<10,
			Events: StreamsEvents{Streams: 100, Received: 100, Open: 100, P99: 2500, RefP99: 1000}},
	}
	var got []string
	for _, c := range StreamsChecks(rows) {
		got = append(got, fmt.Sprint(c.OK, " ", c.What))
	}
	want := []string{"true streams HTTP/2 at 100: mcp-proxy 40.0 KiB per idle stream",
		"false streams HTTP/2 at 100: mcp-proxy adds 1.50 ms to an event's p99",
		"true streams HTTP/2 at 100: 100 opened, 0 failed, 100 events delivered, 100 still open"}
	if len(got) != len(want) {
		t.Fatalf("checks %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("check %d = %q, want it to start %q", i, got[i], w)
		}
	}
	if p50, p99, top := Percentiles([]int64{5, 1, 4, 2, 3}); p50 != 3 || p99 != 5 || top != 5 {
		t.Errorf("Percentiles = %d, %d, %d; want 3, 5, 5", p50, p99, top)
	}
}

// The pooled target of a cell is the one with the least median CPU per
// request among those measured (the first of PooledTargets on a tie).
func TestBestPooled(t *testing.T) {
	cpu := func(us ...float64) []Sample {
		var s []Sample
		for _, u := range us {
			s = append(s, Sample{HopCPU: u})
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		samples map[string][]Sample
		want    string
	}{
		{"none measured", map[string][]Sample{Proxy: cpu(100)}, ""},
		{"no rounds", map[string][]Sample{PooledHop: nil, PooledH1Hop: {}}, ""},
		{"only the HTTP/2 upstream", map[string][]Sample{PooledHop: cpu(140), Proxy: cpu(100)}, PooledHop},
		{"only the HTTP/1.1 upstream", map[string][]Sample{PooledH1Hop: cpu(140), Proxy: cpu(100)}, PooledH1Hop},
		{"HTTP/1.1 upstream cheaper", map[string][]Sample{PooledHop: cpu(140, 150, 145), PooledH1Hop: cpu(110, 120, 115)}, PooledH1Hop},
		{"HTTP/2 upstream cheaper", map[string][]Sample{PooledHop: cpu(170, 160, 165), PooledH1Hop: cpu(175, 180, 170)}, PooledHop},
		// Medians, not means: one slow round does not make a target dearer.
		{"by the median", map[string][]Sample{PooledHop: cpu(100, 100, 400), PooledH1Hop: cpu(120, 120, 120)}, PooledHop},
		{"a tie", map[string][]Sample{PooledHop: cpu(120), PooledH1Hop: cpu(120)}, PooledHop},
	} {
		if got := bestPooled(tc.samples); got != tc.want {
			t.Errorf("%s: bestPooled = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// With both pooled targets measured, each cell's checks compare with the
// cheaper one and say which; against the other, every verdict here would
// be the opposite (the HTTP/1.1 row would pass at 0.89x, the HTTP/2 rows'
// deltas would be +30 and +50 us). The table prints both pooled targets.
func TestChecksAgainstTheCheaperPooledHop(t *testing.T) {
	cells := []Cell{{"canned", "h1", 16}, {"canned", "h2", 16}, {"canned", "h1", 64}, {"canned", "h2", 64}}
	targets := []string{PooledHop, PooledH1Hop, Proxy}
	samples := func(h2, h1, proxy float64) map[string][]Sample {
		return map[string][]Sample{PooledHop: {{RPS: 400, HopCPU: h2}}, PooledH1Hop: {{RPS: 400, HopCPU: h1}}, Proxy: {{RPS: 400, HopCPU: proxy}}}
	}
	r := &Results{Opts: Options{Upstreams: []string{"canned"}, Targets: targets, Rounds: 1}, Cells: cells, Samples: map[Cell]map[string][]Sample{
		cells[0]: samples(140, 110, 125), cells[1]: samples(170, 175, 180),
		cells[2]: samples(150, 120, 118), cells[3]: samples(200, 180, 215),
	}}
	var got []string
	for _, c := range r.Checks() {
		got = append(got, fmt.Sprint(c.OK, " ", c.What))
	}
	h1, h2 := `"pooled hop, HTTP/1.1 upstream", the cheaper pooled target`, `"pooled hop", the cheaper pooled target`
	want := []string{
		"false canned HTTP/1.1 c=16: mcp-proxy CPU 1.14x the pooled hop's (budget <= 1.10x; against " + h1 + ")",
		"true canned HTTP/2 c=16: mcp-proxy CPU 1.06x the pooled hop's (budget <= 1.10x; against " + h2 + ")",
		"true canned HTTP/1.1 c=64: mcp-proxy CPU 0.98x the pooled hop's (budget <= 1.10x; against " + h1 + ")",
		"false canned HTTP/2 c=64: mcp-proxy CPU 1.19x the pooled hop's (budget <= 1.10x; against " + h1 + ")",
		"true canned c=16: HTTP/2 over HTTP/1.1 costs mcp-proxy +55 us, the pooled hop +60 us (budget: no more, 10 us noise; against " + h1 + " over HTTP/1.1, " + h2 + " over HTTP/2)",
		"false canned c=64: HTTP/2 over HTTP/1.1 costs mcp-proxy +97 us, the pooled hop +60 us (budget: no more, 10 us noise; against " + h1 + " on both legs)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checks\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var out strings.Builder
	r.WriteTable(&out, append([]string{Direct, BareHop}, targets...))
	for _, line := range []string{
		"| upstream | client leg | c | pooled hop | pooled hop, HTTP/1.1 upstream | mcp-proxy | mcp-proxy ÷ the cheaper pooled hop |\n",
		"| canned | HTTP/1.1 | 16 | 140 | 110 | 125 | 1.14× (pooled hop, HTTP/1.1 upstream) |\n",
		"| canned | HTTP/2 | 16 | 170 | 175 | 180 | 1.06× (pooled hop) |\n",
		"bench: MISS canned HTTP/1.1 c=16: mcp-proxy CPU 1.14x the pooled hop's (budget <= 1.10x; against " + h1 + ")\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("WriteTable printed\n%s\nwithout %q", out.String(), line)
		}
	}
}

// A run of part of the targets (-targets proxy,trace0.1,trace1) has no
// budget check that needs a target it left out, and none that divides by
// one: only the warm path's.
func TestChecksPartOfTheTargets(t *testing.T) {
	cells := []Cell{{"canned", "h1", 16}, {"canned", "h2", 16}}
	r := &Results{Opts: Options{Upstreams: []string{"canned"}, Targets: []string{Proxy, ProxyTrace10, ProxyTrace100}}, Cells: cells,
		Samples: map[Cell]map[string][]Sample{
			cells[0]: {Proxy: {{RPS: 450, HopCPU: 105}}, ProxyTrace10: {{RPS: 440, HopCPU: 110}}, ProxyTrace100: {{RPS: 300, HopCPU: 160}}},
			cells[1]: {Proxy: {{RPS: 450, HopCPU: 130}}, ProxyTrace10: {{RPS: 440, HopCPU: 140}}, ProxyTrace100: {{RPS: 300, HopCPU: 190}}},
		}, ProxyRequests: map[string]int64{ProxyCannedHost: 10, Trace10Host: 10, Trace100Host: 10},
		CacheHits: map[string]float64{ProxyCannedHost: 12, Trace10Host: 12, Trace100Host: 12}, CacheOther: map[string]float64{}}
	checks := r.Checks()
	if len(checks) != 3 {
		t.Fatalf("checks %v, want the warm path's of the three hosts", checks)
	}
	for _, c := range checks {
		if !c.OK || !strings.Contains(c.What, "the warm path ran") {
			t.Errorf("check %q (ok %v), want only the warm path's, passing", c.What, c.OK)
		}
	}
}

// The large answers' throughput budget is against the pooled hop, the
// median of each round's ratio (not the ratio of the medians): a round
// that was slow for both does not count against the proxy. Direct's ratio
// is printed, not checked; without the pooled hop there is no throughput
// check, only memory's.
func TestLargeChecks(t *testing.T) {
	rows := []LargeRow{
		{What: "5 MB tool result", Proto: "h1", Target: Direct, MBps: []float64{700, 700, 700}, VsDirect: []float64{1, 1, 1}},
		{What: "5 MB tool result", Proto: "h1", Target: PooledHop, MBps: []float64{300, 100, 300}, VsDirect: []float64{0.43, 0.14, 0.43}},
		// Rounds 0.9, 0.95, 0.8: median 0.9, within the budget, though
		// the ratio of the medians (240/300 = 0.8) is not.
		{What: "5 MB tool result", Proto: "h1", Target: Proxy, MBps: []float64{270, 95, 240}, VsDirect: []float64{0.39, 0.14, 0.34}, PeakGrowth: 1 << 20},
		{What: "5 MB tool result", Proto: "h2", Target: PooledHop, MBps: []float64{200, 200, 200}},
		{What: "5 MB tool result", Proto: "h2", Target: Proxy, MBps: []float64{170, 180, 175}, PeakGrowth: MaxLargeGrowth + 1},
		// A run without the pooled hop for this answer: memory only.
		{What: "50 MB resource stream", Proto: "h1", Target: Proxy, MBps: []float64{300}, VsDirect: []float64{0.5}},
	}
	var got []string
	for _, c := range LargeChecks(rows) {
		got = append(got, fmt.Sprint(c.OK, " ", c.What))
	}
	want := []string{
		"true large 5 MB tool result HTTP/1.1: mcp-proxy 0.90x the pooled hop's throughput (budget >= 0.90x)",
		"true large 5 MB tool result HTTP/1.1: mcp-proxy's memory rose 1.0 MiB at most",
		"false large 5 MB tool result HTTP/2: mcp-proxy 0.88x the pooled hop's throughput (budget >= 0.90x)",
		"false large 5 MB tool result HTTP/2: mcp-proxy's memory rose 8.0 MiB at most",
		"true large 50 MB resource stream HTTP/1.1: mcp-proxy's memory rose 0.0 MiB at most",
	}
	if len(got) != len(want) {
		t.Fatalf("checks %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("check %d = %q, want it to start %q", i, got[i], w)
		}
	}
	var out strings.Builder
	WriteLarge(&out, rows, 3)
	for _, line := range []string{
		"| 5 MB tool result | HTTP/1.1 | mcp-proxy | 240 | 0.34× | 0.90× | 1.0 |",
		"| 5 MB tool result | HTTP/1.1 | direct | 700 | 1.00× | 2.33× | 0.0 |",
		"| 50 MB resource stream | HTTP/1.1 | mcp-proxy | 300 | 0.50× | — | 0.0 |",
		"bench: info large 5 MB tool result HTTP/1.1: mcp-proxy 0.34x direct throughput (no budget: direct has no hop)\n",
		"bench: PASS large 5 MB tool result HTTP/1.1: mcp-proxy 0.90x the pooled hop's throughput",
		"bench: MISS large 5 MB tool result HTTP/2: mcp-proxy 0.88x the pooled hop's throughput",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("WriteLarge printed\n%s\nwithout %q", out.String(), line)
		}
	}
}

// The streams' profiles: the heap as text (its MemStats as memory was
// read), then the heap profile after a collection (gc=1: a profile of the
// last collection may predate the last streams), then the goroutines
// (a profile, and as text), each to its file.
func TestSaveProfiles(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RequestURI())
		fmt.Fprint(w, r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	h := &Harness{ProfileDir: t.TempDir(), debugAddrs: map[string]string{"hop": strings.TrimPrefix(srv.URL, "http://")}}
	h.saveProfiles("hop", "streams-h1-hop")
	want := []string{"/debug/pprof/heap?debug=1", "/debug/pprof/heap?gc=1", "/debug/pprof/goroutine", "/debug/pprof/goroutine?debug=2"}
	if !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	for file, body := range map[string]string{"streams-h1-hop-heap.txt": want[0], "streams-h1-hop-heap.pprof": want[1],
		"streams-h1-hop-goroutine.pprof": want[2], "streams-h1-hop-goroutine.txt": want[3]} {
		if b, err := os.ReadFile(filepath.Join(h.ProfileDir, file)); err != nil || string(b) != body {
			t.Errorf("%s = %q, %v; want %q", file, b, err, body)
		}
	}
}

// The event phase's execution trace: asked for long enough to hold the
// events, written to its file once the trace handler has answered.
func TestSaveTrace(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	h := &Harness{ProfileDir: t.TempDir(), debugAddrs: map[string]string{"hop": strings.TrimPrefix(srv.URL, "http://")}}
	<-h.saveTrace("hop", "streams-h1-hop", 3*time.Second)
	want := "/debug/pprof/trace?seconds=3"
	if b, err := os.ReadFile(filepath.Join(h.ProfileDir, "streams-h1-hop-trace.out")); err != nil || string(b) != want {
		t.Errorf("trace = %q, %v; want %q", b, err, want)
	}
	// A hop without a debug listener (nginx) has no trace, and nothing
	// to wait for.
	<-h.saveTrace("nginx", "streams-h1-nginx", time.Second)
	if _, err := os.Stat(filepath.Join(h.ProfileDir, "streams-h1-nginx-trace.out")); err == nil {
		t.Error("a trace of a hop without a debug listener")
	}
}
