package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
)

const auditUsage = `Usage: mcp-proxy audit verify FILE

Checks the hash chain of the audit log FILE line by line. Exits 0 when every
line is intact; otherwise prints the first line that was edited, removed,
inserted or reordered, and exits 1.

The last line's hash is printed too: record it somewhere the proxy's host
cannot write, and a later verify that prints another hash for the same
lines shows the log was cut short or rewritten.
`

// auditCommand runs mcp-proxy audit SUBCOMMAND.
func auditCommand(args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, auditUsage)
		return ExitUsage
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], env)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, auditUsage)
		return ExitOK
	default:
		fmt.Fprintf(env.Stderr, "mcp-proxy audit: unknown subcommand %q\n\n%s", args[0], auditUsage)
		return ExitUsage
	}
}

func auditVerify(args []string, env Env) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), auditUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(env.Stderr, "mcp-proxy audit verify: give exactly one FILE\n\n%s", auditUsage)
		return ExitUsage
	}
	name := fs.Arg(0)
	f, err := os.Open(env.path(name))
	if err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy audit verify: %v\n", err)
		return ExitFailed
	}
	defer f.Close()
	rep, err := audit.Verify(f)
	if err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy audit verify: reading %s: %v\n", name, err)
		return ExitFailed
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(env.Stdout, "%s:%d: %s: %s\n", name, p.Line, p.Kind, p.Detail)
		fmt.Fprintf(env.Stdout, "%s: chain broken at line %d; the %d lines before it verify\n", name, p.Line, rep.Lines)
		return ExitFailed
	}
	fmt.Fprintf(env.Stdout, "%s: %d lines, chain intact\n", name, rep.Lines)
	fmt.Fprintf(env.Stdout, "last hash: %s\n", rep.LastHash)
	return ExitOK
}
