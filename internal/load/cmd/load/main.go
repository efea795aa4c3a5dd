// Command load is `make load` (see package load): it starts the load set
// of internal/bench, runs every phase, prints a table per phase and a last
// line "load: PASS: …" or "load: FAIL: …", and exits 1 on a failure. Every
// process it started has exited when it returns.
//
//	load -bin build/load/bin -clients 200 -duration 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
	"github.com/mcp-proxy/mcp-proxy/internal/load"
)

func main() {
	err := run()
	var failed errFailed
	switch {
	case errors.As(err, &failed):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "load: FAIL:", err)
		os.Exit(1)
	}
}

// errFailed is a run that ended with its report, some rule not holding.
type errFailed struct{}

func (errFailed) Error() string { return "the load test failed" }

func run() error {
	bin := flag.String("bin", "build/load/bin", "`directory` of the binaries: mcp-proxy, benchupstream")
	o := load.Options{Leak: load.DefaultLeakRule, Progress: os.Stderr}
	flag.IntVar(&o.Clients, "clients", 200, "MCP clients, each its own user with its own session (at most 2000)")
	flag.IntVar(&o.Cohort, "cohort", 0, "users added for the refresh phase, with short-lived remote tokens (default a quarter of -clients)")
	flag.DurationVar(&o.Warm, "duration", 60*time.Second, "the warm phase (at most 10m)")
	flag.DurationVar(&o.Restart, "restart-phase", 20*time.Second, "each restart phase; the restart comes at a quarter of it")
	flag.DurationVar(&o.Reload, "reload-phase", 30*time.Second, "the reload phase")
	flag.DurationVar(&o.ReloadEvery, "reload-every", 2*time.Second, "how often the reload phase changes the configuration and sends SIGHUP")
	flag.DurationVar(&o.TTL, "ttl", 16*time.Second, "the refresh cohort's remote token lifetime")
	flag.DurationVar(&o.SlowBy, "slow-by", 2*time.Second, "how long a token request waits while the authorization server is slow")
	flag.IntVar(&o.Parallel, "parallel", 8, "users authorized at a time")
	flag.BoolVar(&o.ServeWhileValid, "serve-while-valid", true, "fail when a request fails while its user's remote token is still valid")
	flag.BoolVar(&o.Redis, "redis", true, "run the Redis phases (two replicas on redis-server, then Sentinel); they need redis-server and redis-sentinel")
	flag.DurationVar(&o.RedisOutage, "redis-outage", 15*time.Second, "how long redis-server is stopped in the Redis outage phase")
	flag.DurationVar(&o.RedisPhase, "redis-phase", 20*time.Second, "the replica-kill and the Sentinel failover phases; the event comes at a quarter of each")
	flag.IntVar(&o.Leak.GoroutineSlack, "leak-goroutines", o.Leak.GoroutineSlack, "goroutines the proxy may gain over the warm phase")
	flag.Float64Var(&o.Leak.HeapFactor, "leak-heap-factor", o.Leak.HeapFactor, "the heap in use after the warm phase may be at most this times the heap before, plus -leak-heap-slack")
	heapSlack := flag.Int("leak-heap-slack", int(o.Leak.HeapSlack)>>20, "`MiB` added to the heap bound")
	keep := flag.Bool("keep", false, "keep the working directory (logs, certificates, the file store)")
	flag.Parse()
	o.Leak.HeapSlack = float64(*heapSlack << 20)
	if o.Cohort == 0 {
		o.Cohort = max(1, o.Clients/4)
	}
	// Bounded in count and time.
	switch {
	case o.Clients < 1 || o.Clients > 2000 || o.Cohort > 2000:
		return fmt.Errorf("-clients %d, -cohort %d: want 1 to 2000", o.Clients, o.Cohort)
	case o.Warm < time.Second || o.Warm > 10*time.Minute || o.Restart < 4*time.Second || o.Restart > 10*time.Minute:
		return fmt.Errorf("-duration %s, -restart-phase %s: want 1s to 10m and 4s to 10m", o.Warm, o.Restart)
	case o.TTL < 4*time.Second || o.TTL > 5*time.Minute || o.SlowBy <= 0 || o.SlowBy >= o.TTL/2:
		return fmt.Errorf("-ttl %s, -slow-by %s: want a TTL of 4s to 5m and a delay under half of it", o.TTL, o.SlowBy)
	case o.ReloadEvery < 500*time.Millisecond || o.Reload < 2*o.ReloadEvery || o.Reload > 10*time.Minute:
		return fmt.Errorf("-reload-phase %s, -reload-every %s: want at least 500ms between reloads, a phase of two of them to 10m", o.Reload, o.ReloadEvery)
	case o.Parallel < 1:
		return fmt.Errorf("-parallel %d: want at least 1", o.Parallel)
	case o.Redis && (o.RedisOutage < time.Second || o.RedisOutage > 10*time.Minute || o.RedisPhase < 8*time.Second || o.RedisPhase > 10*time.Minute):
		return fmt.Errorf("-redis-outage %s, -redis-phase %s: want 1s to 10m and 8s to 10m", o.RedisOutage, o.RedisPhase)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The whole run is bounded too: setup, phases and settling.
	limit := o.Warm + 2*o.Restart + 2*o.TTL + o.Reload + 5*time.Minute
	if o.Redis {
		limit += o.RedisOutage + 2*o.RedisPhase + 4*time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	dir, err := os.MkdirTemp("", "mcp-proxy-load-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "load: working directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	start := time.Now()
	h := &bench.Harness{Bin: abs, Dir: dir, LoadSet: &bench.LoadSetup{Users: load.Users(load.UserCount(o))}}
	if err := h.Start(ctx); err != nil {
		return err
	}
	defer h.Close()
	rep, err := load.Run(ctx, h, o)
	if err != nil {
		return fmt.Errorf("%w\nthe proxy's log ends:\n%s%s", err, tail(h.ProxyLog(), 2000), replicaLogs(h))
	}
	if err := h.Close(); err != nil {
		return err
	}
	fmt.Printf("\nmake load, %d clients, on %d CPUs, %s in all, %s\n", o.Clients, runtime.NumCPU(), time.Since(start).Round(time.Second), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	rep.Print(os.Stdout)
	if len(rep.Failed()) > 0 {
		fmt.Fprintln(os.Stderr, "the proxy's log ends:\n"+tail(h.ProxyLog(), 2000)+replicaLogs(h))
		return errFailed{}
	}
	return nil
}

// replicaLogs are the ends of the Redis replicas' logs, when they ran.
func replicaLogs(h *bench.Harness) string {
	var b strings.Builder
	for i := range 2 {
		if l := h.ReplicaLog(i); l != "" {
			fmt.Fprintf(&b, "\n%s's log ends:\n%s", bench.ReplicaKey(i), tail(l, 1500))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
