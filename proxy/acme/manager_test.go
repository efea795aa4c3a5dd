package acme

import (
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// acmeConfig is a configuration whose ACME server refuses connections
// (nothing listens on 127.0.0.1:1), with a route per host.
func acmeConfig(t *testing.T, hosts ...string) *config.Config {
	t.Helper()
	src := "tls: {acme: {email: ops@example.com, directory_url: \"https://127.0.0.1:1/dir\"}}\n" +
		"identity_provider: {issuer: https://idp.test, client_id: p, client_secret: s}\nroutes:\n"
	for _, h := range hosts {
		src += "  - {from: https://" + h + ", to: https://up.test, mcp: {server: {}}}\n"
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(dir, "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// started returns a started Manager for cfg, its log, and its clock.
func started(t *testing.T, cfg *config.Config) (*Manager, *syncbuf.Buffer, *clock) {
	t.Helper()
	var log syncbuf.Buffer
	c := &clock{t: time.Now()}
	b := store.NewMemory()
	m := NewManager(Options{Logger: slog.New(slog.NewJSONHandler(&log, nil)), Backend: b, Now: c.now})
	t.Cleanup(func() { m.Stop(); b.Close() })
	if err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m.Start(ln.Addr(), nil)
	return m, &log, c
}

func count(log *syncbuf.Buffer, s string) int { return strings.Count(log.String(), s) }

// TestCAUnreachableAtStart: with the CA down, the attempt fails and says
// so; a handshake for a route's host fails and says why, once a minute
// per host; a host no route names fails without a line.
func TestCAUnreachableAtStart(t *testing.T) {
	m, log, c := started(t, acmeConfig(t, "mcp.example.com"))
	deadline := time.Now().Add(20 * time.Second)
	for count(log, `"event":"certificate_failed","host":"mcp.example.com","renewal":false`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate_failed line for an unreachable CA:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, peer := net.Pipe() // certmagic reads the addresses of a handshake's connection
	defer conn.Close()
	defer peer.Close()
	hello := func(name string) error {
		_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: name, Conn: conn})
		return err
	}
	const line = `"event":"certificate_unavailable","host":"mcp.example.com"`
	for range 3 {
		if err := hello("mcp.example.com"); err == nil {
			t.Fatal("a handshake got a certificate before any was obtained")
		}
	}
	if n := count(log, line); n != 1 {
		t.Errorf("3 handshakes in a second logged %d certificate_unavailable lines, want 1:\n%s", n, log)
	}
	c.add(missingEvery + time.Second)
	_ = hello("mcp.example.com")
	if n := count(log, line); n != 2 {
		t.Errorf("a minute later: %d lines, want 2", n)
	}
	_ = hello("other.example.com")
	if n := count(log, `"host":"other.example.com"`); n != 0 {
		t.Errorf("a host no route names was logged %d times", n)
	}
}

// TestApplyKeepsTheCache: a new configuration (a reload) gives the same
// cache new settings and hosts; it starts no second cache, and an
// unreadable ca_file changes nothing.
func TestApplyKeepsTheCache(t *testing.T) {
	m, _, _ := started(t, acmeConfig(t, "mcp.example.com"))
	cache := m.cache
	if err := m.Apply(acmeConfig(t, "mcp.example.com", "two.example.com")); err != nil {
		t.Fatal(err)
	}
	if m.cache != cache {
		t.Error("Apply made a new cache: a second renewal loop")
	}
	if got := strings.Join(m.names, ","); got != "mcp.example.com,two.example.com" {
		t.Errorf("managed names = %s", got)
	}
	bad := acmeConfig(t, "three.example.com")
	bad.TLS.ACME.CAFile = "missing.pem"
	if err := m.Apply(bad); err == nil || !strings.Contains(err.Error(), "tls.acme.ca_file") {
		t.Errorf("Apply with an unreadable ca_file: %v", err)
	}
	if got := strings.Join(m.names, ","); got != "mcp.example.com,two.example.com" {
		t.Errorf("after a refused Apply, managed names = %s", got)
	}
}
