// Package configtest loads configurations for the proxy's tests: the
// settings every file needs (tls, identity_provider) around what a test
// cares about, loaded through config.LoadFile like the real file.
package configtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
)

// Head is the start of every test configuration: certificate files (empty;
// nothing here serves TLS) and an identity provider.
const Head = `tls: {cert_file: c.pem, key_file: k.pem}
identity_provider: {issuer: "https://idp.example.com", client_id: mcp-proxy, client_secret: s}
`

// Load loads src, written as config.yaml in a new directory beside empty
// certificate files; an invalid configuration fails the test.
func Load(t testing.TB, src string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"config.yaml": src, "c.pem": "", "k.pem": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.LoadFile(dir, "config.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Route loads one route from https://mcp.example.com to to, whose
// mcp.server block is server (YAML, "{}" for the defaults).
func Route(t testing.TB, to, server string) *config.Route {
	t.Helper()
	cfg := Load(t, Head+"routes:\n  - from: https://mcp.example.com\n    to: "+to+"\n    mcp:\n      server: "+server+"\n")
	return &cfg.Routes[0]
}
