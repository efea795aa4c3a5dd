// Command profproxy is mcp-proxy with a CPU and an allocation profile, for
// `make bench BENCHFLAGS=-profile DIR` only (the shipped binary has no
// profiler): it runs the same command line, profiling from start until
// it is interrupted, and writes $BENCH_PROFILE_DIR/cpu.pprof and
// allocs.pprof (with $BENCH_CPU_WINDOWS set, the allocation profile only:
// the bench takes the CPU profiles, one per measured window). With $BENCH_DEBUG_ADDR set it also serves net/http/pprof
// there, so that the streams benchmark can read its heap and goroutines
// with every stream open.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof" // for $BENCH_DEBUG_ADDR
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/mcp-proxy/mcp-proxy/proxy/cli"
)

func main() {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		fmt.Fprintln(os.Stderr, "profproxy: set BENCH_PROFILE_DIR")
		os.Exit(2)
	}
	runtime.MemProfileRate = 64 << 10
	// Under bench -cpu-windows the bench asks for a CPU profile of each
	// measured window at $BENCH_DEBUG_ADDR, and Go runs one at a time.
	var f *os.File
	if os.Getenv("BENCH_CPU_WINDOWS") == "" {
		var err error
		if f, err = os.Create(filepath.Join(dir, "cpu.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "profproxy:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "profproxy:", err)
			os.Exit(1)
		}
	}
	if addr := os.Getenv("BENCH_DEBUG_ADDR"); addr != "" {
		go http.ListenAndServe(addr, nil) // net/http/pprof's handlers
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{})
	stop()
	if f != nil {
		pprof.StopCPUProfile()
		f.Close()
	}
	if m, err := os.Create(filepath.Join(dir, "allocs.pprof")); err == nil {
		pprof.Lookup("allocs").WriteTo(m, 0)
		m.Close()
	}
	os.Exit(code)
}
