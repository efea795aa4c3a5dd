// Command bench is `make bench`: it starts the bench processes (see
// package bench), measures direct, the bare hop, the pooled hop (forwarding
// over HTTP/2 and over HTTP/1.1), mcp-proxy (with tracing on too) and the
// peers side by side, then the idle event streams and the large answers,
// and prints each part's tables with the budget's checks.
//
//	bench -bin build/bench/bin -rounds 3 -c 1,16,64 -proto h1,h2 -upstream sdk,canned
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "build/bench/bin", "`directory` of the binaries: mcp-proxy, benchupstream, barehop, loadgen")
	rounds := flag.Int("rounds", 5, "alternating rounds; the table gives medians")
	concs := flag.String("c", "1,16,64", "comma-separated concurrencies")
	protos := flag.String("proto", "h1,h2", "comma-separated client legs: h1, h2")
	ups := flag.String("upstream", "sdk,canned", "comma-separated upstreams: sdk, canned")
	targets := flag.String("targets", "direct,bare,pooled,pooledh1,proxy,policy,caddy,nginx,trace0.1,trace1", "comma-separated targets of the cpu part: direct, bare (the bare hop), pooled (the pooled hop), pooledh1 (the pooled hop forwarding over HTTP/1.1 only, as mcp-proxy does; the budget compares with the cheaper of pooled and pooledh1), proxy, policy (a route with a 20-rule tool policy), caddy and nginx (when they run), trace0.1 and trace1 (tracing on, sampling ratio 0.1 and 1.0; compared with proxy)")
	warmup := flag.Duration("warmup", 300*time.Millisecond, "load before each measured window")
	dur := flag.Duration("duration", time.Second, "each measured window")
	keep := flag.Bool("keep", false, "keep the working directory (logs, certificates)")
	profile := flag.String("profile", "", "run mcp-proxy as profproxy and write its CPU and allocation profiles to this `directory`, with the streams part's heap and goroutine profiles and execution traces of each Go hop")
	cpuWindows := flag.Bool("cpu-windows", false, "with -profile: a CPU profile of each Go hop over each measured window of the cpu part (DIR/cpu-UPSTREAM-PROTO-cC-TARGET-rROUND.pprof), and DIR/windows.tsv with the requests each served, instead of the whole-run CPU profiles; -duration in whole seconds")
	strict := flag.Bool("strict", false, "exit 1 when a check of the budget misses")
	parts := flag.String("parts", "cpu,streams,large", "comma-separated parts: cpu (the table of CPU per request), streams (idle event streams), large (large answers' throughput and memory)")
	largeRounds := flag.Int("large-rounds", 3, "alternating rounds of the large answers")
	streamsH1 := flag.Int("streams-h1", maxH1Streams(), "idle streams over HTTP/1.1 client legs (default: the most that fit the open-files limit with a connection per stream on both legs)")
	streamsH2 := flag.Int("streams-h2", 10000, "idle streams over HTTP/2 client legs")
	rate := flag.Int("stream-rate", 2000, "events a second, one per stream")
	flag.Parse()
	var cs []int
	for _, s := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-c %q: want positive integers", *concs)
		}
		cs = append(cs, n)
	}
	ts, err := parseTargets(*targets)
	if err != nil {
		return err
	}
	if *cpuWindows && (*profile == "" || *dur < time.Second || *dur%time.Second != 0) {
		return fmt.Errorf("-cpu-windows wants -profile DIR and a -duration of whole seconds (the profile endpoint counts in seconds), not %v", *dur)
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", *rounds)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "mcp-proxy-bench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("bench: working directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	start := time.Now()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	partList := strings.Split(*parts, ",")
	traced := slices.Contains(ts, bench.ProxyTrace10) || slices.Contains(ts, bench.ProxyTrace100)
	h := &bench.Harness{Bin: abs, Dir: dir, Traced: traced && slices.Contains(partList, "cpu"), CPUWindows: *cpuWindows}
	if *profile != "" {
		if h.ProfileDir, err = filepath.Abs(*profile); err != nil {
			return err
		}
		if err := os.MkdirAll(h.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	defer h.Close()
	fmt.Printf("bench: started in %.1fs; mcp-proxy authorized on %s\n", time.Since(start).Seconds(), strings.Join(h.RouteHosts(), ", "))
	var checks []bench.Check
	if slices.Contains(partList, "cpu") {
		res, err := h.Run(ctx, bench.Options{Rounds: *rounds, Concurrency: cs, Protos: strings.Split(*protos, ","),
			Upstreams: strings.Split(*ups, ","), Targets: ts, Warmup: *warmup, Duration: *dur, Progress: os.Stdout, CPUWindows: *cpuWindows})
		if err != nil {
			return err
		}
		res.WriteTable(os.Stdout, h.Targets())
		checks = append(checks, res.Checks()...)
		checks = append(checks, res.TraceChecks()...)
	}
	if slices.Contains(partList, "streams") {
		rows, err := h.RunStreams(ctx, bench.StreamsOptions{H1: *streamsH1, H2: *streamsH2, Rate: *rate, Progress: os.Stdout})
		if err != nil {
			return err
		}
		bench.WriteStreams(os.Stdout, rows, *rate)
		checks = append(checks, bench.StreamsChecks(rows)...)
	}
	if slices.Contains(partList, "large") {
		rows, err := h.RunLarge(ctx, *largeRounds, os.Stdout)
		if err != nil {
			return err
		}
		bench.WriteLarge(os.Stdout, rows, *largeRounds)
		checks = append(checks, bench.LargeChecks(rows)...)
	}
	if h.ProfileDir != "" {
		h.Close()
		fmt.Printf("bench: mcp-proxy's profiles are in %s (go tool pprof -top %s/cpu.pprof)\n", h.ProfileDir, h.ProfileDir)
	}
	fmt.Printf("bench: %.0fs in all\n", time.Since(start).Seconds())
	if *strict {
		for _, c := range checks {
			if !c.OK {
				return fmt.Errorf("a check of the budget missed")
			}
		}
	}
	return nil
}

// maxH1Streams is the most idle streams over HTTP/1.1 that fit this
// process's hard limit of open files in a hop with a connection per
// stream on each leg (two files per stream, and a thousand to spare),
// at most 10,000.
func maxH1Streams() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Max > 1<<30 {
		return 10000
	}
	return min(10000, int(l.Max-1000)/2)
}

// parseTargets reads -targets.
func parseTargets(list string) ([]string, error) {
	var ts []string
	for _, k := range strings.Split(list, ",") {
		t, ok := bench.TargetKeys[strings.TrimSpace(k)]
		if !ok {
			keys := slices.Sorted(maps.Keys(bench.TargetKeys))
			return nil, fmt.Errorf("-targets %q: %q is not a target (%s)", list, k, strings.Join(keys, ", "))
		}
		ts = append(ts, t)
	}
	return ts, nil
}
