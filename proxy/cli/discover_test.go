package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/cli"
)

// discover -h prints one usage line, naming the URL it needs.
func TestDiscoverHelpPrintsUsageOnce(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"discover", "-h"}, cli.Env{Stdout: &out, Stderr: &errb})
	help := out.String() + errb.String()
	if code != cli.ExitOK {
		t.Errorf("exit %d, want %d", code, cli.ExitOK)
	}
	if n := strings.Count(help, "Usage:"); n != 1 || !strings.Contains(help, "Usage: mcp-proxy discover [flags] URL\n") {
		t.Errorf("discover -h printed %d usage lines:\n%s", n, help)
	}
	if !strings.Contains(help, "-resolve host:port:address") {
		t.Errorf("discover -h does not explain its flags:\n%s", help)
	}
}
