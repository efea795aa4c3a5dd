// Command mcp-conformance-client is the client command the official MCP
// conformance suite runs for each client scenario: the suite appends the
// scenario server's URL and names the scenario in its environment.
//
// -mode proxy runs the scenario through mcp-proxy on the in-process stack;
// -mode direct runs it with the plain MCP Go SDK client (the baseline).
// The proxy's log goes to stderr, which the suite saves beside the checks.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance/clients"
)

func main() {
	mode := flag.String("mode", "proxy", "proxy (through mcp-proxy) or direct (the plain MCP Go SDK client)")
	flag.Parse()
	if flag.NArg() != 1 || (*mode != "proxy" && *mode != "direct") {
		fmt.Fprintln(os.Stderr, clients.ErrUsage)
		os.Exit(2)
	}
	r, err := clients.RunFromEnv(flag.Arg(0), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *mode == "direct" {
		err = clients.Direct(ctx, r)
	} else {
		err = clients.Proxied(ctx, r, func(log string) {
			fmt.Fprintf(os.Stderr, "--- mcp-proxy log ---\n%s--- end of mcp-proxy log ---\n", log)
		})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s (%s): %v\n", r.Scenario, *mode, err)
		os.Exit(1)
	}
	fmt.Printf("%s (%s): called %s\n", r.Scenario, *mode, "test-tool")
}
