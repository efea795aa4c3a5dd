package docrun

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/idp"
	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockas"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

var quickstart = flag.String("quickstart", "../../docs/quickstart.md", "the Quick Start page whose commands run")

const repoRoot = "../.."

// The names of the docs and what serves them here.
const (
	proxyHost    = "mcp.example.com"
	upstreamHost = "remote-mcp.provider.com"
	asHost       = "auth.provider.com"
	idpHost      = "idp.example.com"
	clientHost   = "client.example.net"
)

// doubles are the Quick Start's other parties: the remote MCP server, its
// authorization server, the identity provider and the host of the MCP
// client's metadata document, each on a loopback port with a certificate
// from a CA made for the test.
type doubles struct {
	ca        *testca.CA
	hosts     *hostmap.Map
	transport http.RoundTripper
	idpSecret string
	servers   []*http.Server
}

func startDoubles(t *testing.T) *doubles {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	d := &doubles{ca: ca, hosts: hostmap.New(), idpSecret: "idp-secret-quickstart-test"}
	d.transport = netguard.NewTransport(d.hosts.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()})
	quiet := slog.New(slog.DiscardHandler)
	as, err := mockas.New(mockas.Config{
		Issuer: "https://" + asHost, Resolver: d.hosts, Dial: d.hosts.DialContext,
		TrustedHosts: []string{proxyHost}, RootCAs: ca.Pool(), Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	idpConfig := idp.Config(idpHost, d.idpSecret, proxyHost)
	idpConfig.Resolver, idpConfig.Dial, idpConfig.RootCAs, idpConfig.Logger = d.hosts, d.hosts.DialContext, ca.Pool(), quiet
	idpServer, err := mockas.New(idpConfig)
	if err != nil {
		t.Fatal(err)
	}
	mcp, err := mockmcp.New(mockmcp.Config{
		ResourceURL:          "https://" + upstreamHost + "/mcp",
		AuthorizationServers: []string{"https://" + asHost},
		HTTPClient:           &http.Client{Transport: d.transport, Timeout: 10 * time.Second},
		Logger:               quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	for host, h := range map[string]http.Handler{asHost: as, idpHost: idpServer, upstreamHost: mcp, clientHost: clientmeta.Handler(clientHost, "")} {
		leaf, err := ca.Issue(host)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{
			Handler:           h,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		}
		d.servers = append(d.servers, srv)
		d.hosts.Set(host, 443, netip.MustParseAddrPort(ln.Addr().String()))
		go srv.ServeTLS(ln, "", "")
	}
	t.Cleanup(func() {
		for _, s := range d.servers {
			s.Close()
		}
	})
	return d
}

// trustFlags are the documented serve flags that let a proxy on this
// machine reach the doubles: trust the test's CA, map each name to its
// loopback port (-resolve, like curl's), and let the names the proxy learns
// from metadata, rather than from the configuration, resolve to loopback.
func (d *doubles) trustFlags(t *testing.T, dir string) []string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "test-ca.pem"), d.ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-ca-file", "test-ca.pem", "-allow-private-host", asHost, "-allow-private-host", clientHost}
	for _, h := range []string{upstreamHost, asHost, idpHost, clientHost} {
		addrs, err := d.hosts.Resolve(context.Background(), h, 443)
		if err != nil || len(addrs) != 1 {
			t.Fatalf("resolving %s: %v %v", h, addrs, err)
		}
		flags = append(flags, "-resolve", fmt.Sprintf("%s:443:%s", h, addrs[0]))
	}
	return flags
}

// TestQuickStartAsWritten takes the Quick Start page's commands and its
// configuration as written and runs them for real: it builds mcp-proxy,
// validates the configuration and serves it as a separate process, then an
// MCP client reaches the remote server through it.
//
// What the test adds, and nothing else:
//   - the build's -o names a file in the test's directory instead of the
//     checkout (the page runs it from the repository's root);
//   - a value written "..." (a secret the reader fills in) is the test
//     identity provider's secret;
//   - serve gets -listen 127.0.0.1:0 and the trust flags above, which
//     stand for the DNS and certificates of a real deployment.
func TestQuickStartAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mcp-proxy; not in -short mode")
	}
	page, err := os.ReadFile(*quickstart)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := Commands(page)
	if err != nil {
		t.Fatalf("%s: %v", *quickstart, err)
	}
	if len(cmds) == 0 {
		t.Fatalf("%s has no shell commands", *quickstart)
	}
	config := pageConfig(t, page).Body
	d := startDoubles(t)

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTLS(t, d, work, config)

	secrets := map[string]string{"IDP_CLIENT_SECRET": d.idpSecret}
	env := []string{}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); secrets[name] == "" {
			env = append(env, kv)
		}
	}
	fill := func(c Command) []string {
		var out []string
		for _, a := range c.Env {
			v := a[1]
			if v == "..." {
				s, ok := secrets[a[0]]
				if !ok {
					t.Fatalf("line %d: %s=... names a value the test does not know", c.Line, a[0])
				}
				v = s
			}
			out = append(out, a[0]+"="+v)
		}
		return out
	}

	var served bool
	for _, c := range cmds {
		t.Logf("quickstart.md:%d: %s", c.Line, c.Text)
		if c.Export {
			env = append(env, fill(c)...)
			continue
		}
		cmdEnv := append(slices.Clone(env), fill(c)...)
		switch {
		case c.Args[0] == "go":
			runBuild(t, c, work, cmdEnv)
		case c.Args[0] == "./mcp-proxy" && len(c.Args) > 1 && c.Args[1] == "serve":
			addr := serve(t, c, work, cmdEnv, d.trustFlags(t, work))
			d.hosts.Set(proxyHost, 443, addr)
			served = true
		case c.Args[0] == "./mcp-proxy":
			cmd := exec.Command(filepath.Join(work, "mcp-proxy"), c.Args[1:]...)
			cmd.Dir, cmd.Env = work, cmdEnv
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("quickstart.md:%d: %s failed as written: %v\n%s", c.Line, c.Text, err, out)
			}
			t.Logf("%s", out)
		default:
			t.Fatalf("quickstart.md:%d: the test does not know how to run %q", c.Line, c.Text)
		}
	}
	if !served {
		t.Fatal("the Quick Start page never starts mcp-proxy serve")
	}

	// The page's promise: point an MCP client at https://mcp.example.com/mcp.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	name := "quickstart-test"
	c, err := actors.NewMCPClient(d.transport, "alice", name, clientmeta.MetadataURL(clientHost, name), clientmeta.RedirectURL(clientHost, name))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx, "https://"+proxyHost+"/mcp"); err != nil {
		t.Fatalf("connecting an MCP client through the proxy: %v\nbrowser: %s", err, c.History())
	}
	res, err := c.Call(ctx, "whoami", map[string]any{})
	if err != nil {
		t.Fatalf("whoami through the proxy: %v", err)
	}
	text := actors.ToolText(res)
	if res.IsError || !strings.Contains(text, "alice") || !strings.Contains(text, "https://"+upstreamHost+"/mcp") {
		t.Fatalf("whoami through the proxy answered %q; want alice's identity at %s", text, upstreamHost)
	}
	t.Logf("whoami through the proxy: %s", text)
	if d := d.hosts.RefusedDials(); len(d) > 0 {
		t.Errorf("something tried to connect outside the test's hosts: %v", d)
	}
}

// pageConfig returns the page's configuration file: the yaml example that
// starts with "# config.yaml" and runs (the first such).
func pageConfig(t *testing.T, page []byte) *docexamples.Example {
	t.Helper()
	exs, err := docexamples.Parse(*quickstart, page)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exs {
		if e.Lang == "yaml" && strings.HasPrefix(e.Body, "# config.yaml\n") {
			return e
		}
	}
	t.Fatalf("%s has no yaml example starting with # config.yaml", *quickstart)
	return nil
}

// writeTLS issues the certificate the configuration names, for its routes'
// hosts, at the paths it gives.
func writeTLS(t *testing.T, d *doubles, dir, config string) {
	t.Helper()
	var shape struct {
		TLS struct {
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls"`
	}
	if err := yaml.Unmarshal([]byte(config), &shape); err != nil {
		t.Fatal(err)
	}
	if shape.TLS.CertFile == "" || shape.TLS.KeyFile == "" {
		t.Fatal("the Quick Start configuration names no certificate")
	}
	leaf, err := d.ca.Issue(proxyHost)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, shape.TLS.CertFile), filepath.Join(dir, shape.TLS.KeyFile)); err != nil {
		t.Fatal(err)
	}
}

// runBuild runs the page's go build from the repository root, with its -o
// in the test's directory.
func runBuild(t *testing.T, c Command, work string, env []string) {
	t.Helper()
	args := slices.Clone(c.Args)
	i := slices.Index(args, "-o")
	if len(args) < 2 || args[1] != "build" || i < 0 || i+1 >= len(args) {
		t.Fatalf("quickstart.md:%d: %q is not a go build -o FILE command", c.Line, c.Text)
	}
	if args[i+1] != "mcp-proxy" {
		t.Fatalf("quickstart.md:%d: the build writes %q but the page runs ./mcp-proxy", c.Line, args[i+1])
	}
	args[i+1] = filepath.Join(work, "mcp-proxy")
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = root, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("quickstart.md:%d: %s failed: %v\n%s", c.Line, c.Text, err, out)
	}
}

// serve starts the page's serve command as a process and returns the
// address it listens on, from its proxy_started log event.
func serve(t *testing.T, c Command, work string, env, trust []string) netip.AddrPort {
	t.Helper()
	args := append(slices.Clone(c.Args[1:]), "-listen", "127.0.0.1:0")
	args = append(args, trust...)
	cmd := exec.Command(filepath.Join(work, "mcp-proxy"), args...)
	cmd.Dir, cmd.Env = work, env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncbuf.Buffer
	cmd.Stdout = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, &logBuf))
		for sc.Scan() {
			var ev struct {
				Event  string `json:"event"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "proxy_started" {
				select {
				case addrCh <- ev.Listen:
				default:
				}
			}
		}
		_, _ = io.Copy(&logBuf, stderr)
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil && !t.Failed() {
				t.Errorf("mcp-proxy serve did not stop cleanly on SIGTERM: %v", waitErr)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("mcp-proxy serve did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("mcp-proxy log:\n%s", logBuf.String())
		}
	})
	select {
	case a := <-addrCh:
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			t.Fatalf("proxy_started names the address %q: %v", a, err)
		}
		return ap
	case <-exited:
		t.Fatalf("quickstart.md:%d: %s exited before serving: %v\n%s", c.Line, c.Text, waitErr, logBuf.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("quickstart.md:%d: %s did not log proxy_started within 30s\n%s", c.Line, c.Text, logBuf.String())
	}
	return netip.AddrPort{}
}

// TestDemoAgreesWithQuickStart checks that make demo, which the Quick Start
// page offers for trying the proxy on one machine, runs the page's own
// configuration and walks a user through it.
func TestDemoAgreesWithQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mcp-stack; not in -short mode")
	}
	page, err := os.ReadFile(*quickstart)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("`make demo`")) {
		t.Fatalf("%s no longer mentions make demo: update this test", *quickstart)
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^demo:\s*\n\t\$\(GO\) run \./cmd/mcp-stack\b`).Match(mk) {
		t.Fatal("the Makefile's demo target no longer runs ./cmd/mcp-stack: update this test")
	}
	want := pageConfig(t, page)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	docs, err := filepath.Abs(filepath.Dir(*quickstart))
	if err != nil {
		t.Fatal(err)
	}
	// The demo's defaults, as make demo runs it, without its serving phase.
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/mcp-stack", "-once", "-docs", docs)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mcp-stack -once: %v\n%s", err, out)
	}
	line := fmt.Sprintf("serving the documented configuration %q (docs/%s.md)", want.ID, want.Page)
	if !bytes.Contains(out, []byte(line)) {
		t.Errorf("make demo does not run the Quick Start page's configuration %q; it said:\n%s", want.ID, out)
	}
	if !bytes.Contains(out, []byte("whoami")) || !bytes.Contains(out, []byte("alice")) {
		t.Errorf("make demo's walkthrough did not reach whoami as alice:\n%s", out)
	}
}
