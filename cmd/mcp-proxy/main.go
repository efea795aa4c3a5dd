// Command mcp-proxy puts OAuth in front of remote MCP servers for your
// users' MCP clients. See docs/quickstart.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcp-proxy/mcp-proxy/proxy/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{})
	stop()
	os.Exit(code)
}
