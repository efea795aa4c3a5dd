// Command bench is `make bench`: it starts the bench processes (see
// package bench), measures direct, the bare hop and mcp-proxy side by side
// and prints the table with the budget's checks.
//
//	bench -bin build/bench/bin -rounds 3 -c 1,16,64 -proto h1,h2 -upstream sdk,canned
package main

import (
	"context"
	"flag"
	"fmt"
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
	targets := flag.String("targets", "direct,bare,proxy,policy,trace0.1,trace1", "comma-separated targets: direct, bare (the bare hop), proxy, policy (a route with a 20-rule tool policy), trace0.1 and trace1 (tracing on, sampling ratio 0.1 and 1.0; compared with proxy)")
	warmup := flag.Duration("warmup", 300*time.Millisecond, "load before each measured window")
	dur := flag.Duration("duration", time.Second, "each measured window")
	keep := flag.Bool("keep", false, "keep the working directory (logs, certificates)")
	profile := flag.String("profile", "", "run mcp-proxy as profproxy and write its CPU and allocation profiles to this `directory`")
	strict := flag.Bool("strict", false, "exit 1 when a check of the budget misses")
	flag.Parse()
	var cs []int
	for _, s := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-c %q: want positive integers", *concs)
		}
		cs = append(cs, n)
	}
	var ts []string
	for _, k := range strings.Split(*targets, ",") {
		t, ok := bench.TargetKeys[strings.TrimSpace(k)]
		if !ok {
			return fmt.Errorf("-targets %q: %q is not a target (direct, bare, proxy, policy, trace0.1, trace1)", *targets, k)
		}
		ts = append(ts, t)
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
	h := &bench.Harness{Bin: abs, Dir: dir, Traced: slices.Contains(ts, bench.ProxyTrace10) || slices.Contains(ts, bench.ProxyTrace100)}
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
	res, err := h.Run(ctx, bench.Options{Rounds: *rounds, Concurrency: cs, Protos: strings.Split(*protos, ","),
		Upstreams: strings.Split(*ups, ","), Targets: ts, Warmup: *warmup, Duration: *dur, Progress: os.Stdout})
	if err != nil {
		return err
	}
	res.WriteTable(os.Stdout)
	if h.ProfileDir != "" {
		h.Close()
		fmt.Printf("bench: mcp-proxy's profiles are in %s (go tool pprof -top %s/cpu.pprof)\n", h.ProfileDir, h.ProfileDir)
	}
	fmt.Printf("bench: %.0fs in all\n", time.Since(start).Seconds())
	if *strict {
		for _, c := range append(res.Checks(), res.TraceChecks()...) {
			if !c.OK {
				return fmt.Errorf("a check of the budget missed")
			}
		}
	}
	return nil
}
