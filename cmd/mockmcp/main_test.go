package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

const resource = "https://remote-mcp.provider.com/mcp"

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	help := out.String()
	fs, _ := newFlagSet(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if f.Usage == "" {
			t.Errorf("flag -%s has no explanation", f.Name)
		}
		name, usage := flag.UnquoteUsage(f)
		if !strings.Contains(help, "  -"+f.Name+" "+name+"\n") && !strings.Contains(help, "  -"+f.Name+"\n") {
			t.Errorf("-h does not list -%s", f.Name)
		}
		if first := strings.Fields(usage)[0]; !strings.Contains(help, first) {
			t.Errorf("-h does not explain -%s", f.Name)
		}
	})
	if n != 15 {
		t.Errorf("%d flags declared, want 15: update this test and the docs when adding one", n)
	}
	for _, want := range []string{"/.test/", "events", "counters", "faults", "settings", "tokens", "whoami", "Example:"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "ResourceURL is required"},
		{[]string{"-resource", resource}, "AuthorizationServers needs at least one issuer URL"},
		{[]string{"-resource", resource, "-no-auth", "-prm", "sideways"}, "-prm: unknown protected resource metadata location"},
		{[]string{"-resource", resource, "-no-auth", "-tool-scope", "echo"}, "want TOOL=SCOPE"},
		{[]string{"-resource", resource, "-no-auth", "-tool-scope", "echo=,"}, "want TOOL=SCOPE"},
		{[]string{"-resource", resource, "-no-auth", "-ca-file", "/nonexistent.pem"}, "-ca-file"},
		{[]string{"-resource", resource, "-no-auth", "-tls-cert", "c.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-resource", resource, "-no-auth", "-listen", "0.0.0.0:8443"}, "not a loopback address"},
		{[]string{"-resource", resource, "-no-auth", "extra"}, "unexpected arguments"},
		{[]string{"-resource", resource, "-no-auth", "-no-such-flag"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q): %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestConfigFromFlags(t *testing.T) {
	tests := []struct {
		args []string
		want mockmcp.Config
	}{
		{[]string{"-resource", resource, "-as", "https://auth.provider.com"},
			mockmcp.Config{ResourceURL: resource, AuthorizationServers: []string{"https://auth.provider.com"}}},
		{[]string{"-resource", resource, "-no-auth", "-prm", "root", "-scopes", "a, b", "-resource-name", "R", "-allow-any-host", "-control-secret", "s"},
			mockmcp.Config{ResourceURL: resource, NoAuth: true, PRM: mockmcp.PRMRoot, ScopesSupported: []string{"a", "b"}, ResourceName: "R", AllowAnyHost: true, ControlSecret: "s"}},
		{[]string{"-resource", resource, "-no-auth", "-challenge-scopes", ""},
			mockmcp.Config{ResourceURL: resource, NoAuth: true, ChallengeScopes: []string{}}},
		{[]string{"-resource", resource, "-no-auth", "-challenge-scopes", "x", "-prm", "absent"},
			mockmcp.Config{ResourceURL: resource, NoAuth: true, ChallengeScopes: []string{"x"}, PRM: mockmcp.PRMAbsent}},
		{[]string{"-resource", resource, "-as", "https://a.example", "-as", "https://b.example", "-tool-scope", "echo=x,y", "-tool-scope", "slow=z"},
			mockmcp.Config{ResourceURL: resource, AuthorizationServers: []string{"https://a.example", "https://b.example"},
				ToolScopes: map[string][]string{"echo": {"x", "y"}, "slow": {"z"}}}},
	}
	for _, tt := range tests {
		fs, o := newFlagSet(io.Discard)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		fs.Visit(func(f *flag.Flag) { o.challengeScopesSet = o.challengeScopesSet || f.Name == "challenge-scopes" })
		got, err := config(o, nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if got.HTTPClient == nil {
			t.Errorf("%q: no HTTP client for the JWKS", tt.args)
		}
		got.HTTPClient, got.Logger = nil, nil
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b *slog.Logger) bool { return true })); diff != "" {
			t.Errorf("%q: config (-want +got):\n%s", tt.args, diff)
		}
	}
}

// TestServes runs the command on HTTPS under the real-looking name and
// talks to it as the stack would.
func TestServes(t *testing.T) {
	t.Setenv("MOCKMCP_CONTROL_SECRET", "env-secret")
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("remote-mcp.provider.com")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := leaf.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-resource", resource, "-no-auth", "-listen", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key},
			io.Discard, func(a string) { addr <- a })
	}()
	var listening string
	select {
	case listening = <-addr:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after shutdown: %v", err)
		}
	}()
	hosts := hostmap.New()
	hosts.Set("remote-mcp.provider.com", 443, netip.MustParseAddrPort(listening))
	client := &http.Client{Transport: netguard.NewTransport(hosts.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()})}
	defer client.CloseIdleConnections()

	do := func(method, path, authz, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://remote-mcp.provider.com"+path, strings.NewReader(body))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 {
			t.Errorf("%s %s: served over %s, want HTTP/2", method, path, resp.Proto)
		}
		return resp.StatusCode, string(b)
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	if status, body := do("GET", "/healthz", "", ""); status != 200 {
		t.Errorf("healthz: %d %s", status, body)
	}
	if status, body := do("POST", "/mcp", "", initialize); status != 200 || !strings.Contains(body, "mockmcp") {
		t.Errorf("initialize without a token (-no-auth): %d %s", status, body)
	}
	if status, _ := do("GET", "/.test/counters", "Bearer wrong", ""); status != 401 {
		t.Errorf("counters with a wrong secret: %d", status)
	}
	status, body := do("GET", "/.test/counters", "Bearer env-secret", "")
	var counters map[string]int
	if err := json.Unmarshal([]byte(body), &counters); status != 200 || err != nil || counters["mcp"] != 1 {
		t.Errorf("counters with $MOCKMCP_CONTROL_SECRET: %d %s", status, body)
	}
}
