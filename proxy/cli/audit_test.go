package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/cli"
)

func writeAuditLog(t *testing.T, dir string, n int) string {
	t.Helper()
	l, err := audit.OpenFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := l.Append(audit.Record{User: "alice", Route: "mcp.example.com", Action: "token_used", Decision: "allowed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "audit.log"
}

func runCLI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errOut, Dir: dir})
	return code, out.String(), errOut.String()
}

func TestAuditVerifyIntact(t *testing.T) {
	dir := t.TempDir()
	name := writeAuditLog(t, dir, 3)
	code, out, errOut := runCLI(t, dir, "audit", "verify", name)
	if code != cli.ExitOK || !strings.HasPrefix(out, "audit.log: 3 lines, chain intact\nlast hash: ") {
		t.Fatalf("audit verify of an intact log: exit %d, stdout %q, stderr %q; want exit 0 and \"audit.log: 3 lines, chain intact\"", code, out, errOut)
	}
}

func TestAuditVerifyBroken(t *testing.T) {
	dir := t.TempDir()
	name := writeAuditLog(t, dir, 3)
	path := filepath.Join(dir, name)
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	lines[1] = strings.Replace(lines[1], `"allowed"`, `"denied"`, 1)
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600)
	code, out, _ := runCLI(t, dir, "audit", "verify", name)
	if code != cli.ExitFailed {
		t.Errorf("audit verify of an edited log: exit %d, want %d", code, cli.ExitFailed)
	}
	for _, want := range []string{"audit.log:2: hash mismatch", "chain broken at line 2; the 1 lines before it verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit verify output %q does not contain %q", out, want)
		}
	}
}

func TestAuditVerifyUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"audit"}, cli.ExitUsage},
		{[]string{"audit", "check", "x"}, cli.ExitUsage},
		{[]string{"audit", "verify"}, cli.ExitUsage},
		{[]string{"audit", "verify", "a", "b"}, cli.ExitUsage},
		{[]string{"audit", "verify", "-x", "a"}, cli.ExitUsage},
		{[]string{"audit", "verify", "-h"}, cli.ExitOK},
		{[]string{"audit", "verify", "missing.log"}, cli.ExitFailed},
	} {
		if code, _, _ := runCLI(t, dir, c.args...); code != c.code {
			t.Errorf("mcp-proxy %s: exit %d, want %d", strings.Join(c.args, " "), code, c.code)
		}
	}
	if _, out, _ := runCLI(t, dir, "help"); !strings.Contains(out, "mcp-proxy audit verify FILE") {
		t.Errorf("usage does not list audit verify:\n%s", out)
	}
}
