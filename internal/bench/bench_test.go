package bench

import (
	"os"
	"runtime"
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
