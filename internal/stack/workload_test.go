package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
)

// TestWriteConfigKeepsAWorkloadToken: a route's workload token file is
// written only where it is missing, so a token the harness wrote (the
// official suite's valid_jwt) is the one the proxy presents.
func TestWriteConfigKeepsAWorkloadToken(t *testing.T) {
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := "routes:\n  - from: https://mcp.example.com\n    mcp:\n      server:\n        service_account:\n          workload_identity:\n            token_file: %s\n"
	mint := func(aud string, _ time.Time) (string, error) { return "minted-for-" + aud, nil }
	kept := filepath.Join(dir, "suite-token")
	if err := os.WriteFile(kept, []byte("the suite's"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{kept: "the suite's", "missing-token": "minted-for-https://" + ASHost} {
		if err := writeConfig(ca, dir, strings.Replace(cfg, "%s", file, 1), nil, mint); err != nil {
			t.Fatal(err)
		}
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if got, _ := os.ReadFile(p); strings.TrimSpace(string(got)) != want {
			t.Errorf("%s holds %q, want %q", file, got, want)
		}
	}
}
