package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: the configuration decoder never panics on any file, and a
// file it accepts has every route provisioned.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	for _, n := range []string{"c.pem", "k.pem"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{
		head + "routes:\n  - from: https://mcp.example.com\n    to: https://remote-mcp.provider.com\n    mcp:\n      server: {}\n",
		head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_token_binding: per_session}}}]\n",
		head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_oauth2: {client_id: x, endpoint: {auth_url: https://a/x, token_url: https://a/t}}}}}]\n",
		"{}", "routes: [\n", "listen: ::1:443\n", "storage: {type: redis, redis_url: 'redis://:p@h:6379'}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(filepath.Join(dir, "config.yaml"), data, fuzzEnv)
		if err != nil {
			return
		}
		for _, r := range cfg.Routes {
			if r.Key() == "" || r.ToURL() == nil {
				t.Fatalf("an accepted route is not provisioned: %+v", r)
			}
		}
	})
}

// fuzzEnv answers every ${VAR} a configuration names, and leaves the
// OTEL_* variables unset: answered, they would turn tracing on with an
// endpoint of "s" and every input would be refused before the check.
func fuzzEnv(k string) (string, bool) {
	if strings.HasPrefix(k, "OTEL_") {
		return "", false
	}
	return "s", true
}
