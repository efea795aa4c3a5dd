// Command mcp-conformance-client is the client command the official MCP
// conformance suite runs for each client scenario: the suite appends the
// scenario server's URL and names the scenario in its environment.
//
// -mode proxy runs the scenario through mcp-proxy on the in-process stack;
// -mode direct runs it without the proxy (the baseline). An auth scenario
// runs the harness's own MCP Go SDK client; any other runs the MCP Go
// SDK's conformance client (-everything-client), directly or through the
// route. The proxy's log goes to stderr, which the suite saves beside the
// checks.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance/clients"
)

func main() {
	mode := flag.String("mode", "proxy", "proxy (through mcp-proxy) or direct (without it)")
	everything := flag.String("everything-client", "", "the MCP Go SDK's conformance client `binary`, for the scenarios that are not auth scenarios (default: everything-client beside this binary)")
	flag.Parse()
	if flag.NArg() != 1 || (*mode != "proxy" && *mode != "direct") {
		fmt.Fprintln(os.Stderr, clients.ErrUsage)
		os.Exit(2)
	}
	if *everything == "" {
		if self, err := os.Executable(); err == nil {
			*everything = filepath.Join(filepath.Dir(self), "everything-client")
		}
	}
	r, err := clients.RunFromEnv(flag.Arg(0), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *mode == "direct" {
		err = clients.Direct(ctx, r, *everything)
	} else {
		err = clients.Proxied(ctx, r, *everything, func(log string) {
			fmt.Fprintf(os.Stderr, "--- mcp-proxy log ---\n%s--- end of mcp-proxy log ---\n", log)
		})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s (%s): %v\n", r.Scenario, *mode, err)
		os.Exit(1)
	}
	fmt.Printf("%s (%s): done\n", r.Scenario, *mode)
}
