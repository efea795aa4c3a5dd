package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ACMEDirectoryEnv is the variable the docs' ACME example reads its
// directory URL from.
const ACMEDirectoryEnv = "ACME_DIRECTORY_URL"

// PebbleVersion is the Pebble the harness builds (internal/realservers/build.sh).
const PebbleVersion = "github.com/letsencrypt/pebble/v2@v2.10.3"

// ACMEServerOptions tune Pebble for a scenario.
type ACMEServerOptions struct {
	// Dir holds the pebble binary (make real-servers-build builds it).
	Dir string
	// Validity is how long the certificates Pebble issues live; zero
	// means an hour.
	Validity time.Duration
}

// ACMEServer is Pebble, Let's Encrypt's test ACME server, on loopback,
// with a DNS server that answers the stack's names with 127.0.0.1: Pebble
// looks the route hosts up there (never in the system's resolver) and
// validates the proxy's challenges on its listeners. It may be stopped
// and started again; Pebble then forgets its accounts and makes a new
// root, which the stack trusts too.
type ACMEServer struct {
	local      *Local
	bin        string
	dir        string
	args       []string
	api, mgmt  string // Pebble's listen addresses
	proc       *process
	dns        *dns.Server
	dnsAddr    string
	client     *http.Client
	roots      int
	configJSON []byte
}

// PrepareACMEServer reserves Pebble's ports and the proxy's (tls-alpn-01
// is validated on the proxy's listener, http-01 on its http_listen),
// writes Pebble's configuration and starts the DNS server, without
// starting Pebble: a scenario may start the proxy first, with its ACME
// server down. ACMEDirectoryEnv names Pebble's directory from now on.
func (s *Local) PrepareACMEServer(opts ACMEServerOptions) (_ *ACMEServer, err error) {
	bin, err := filepath.Abs(filepath.Join(opts.Dir, "pebble"))
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s is not built (make real-servers-build builds Pebble into %s)", bin, opts.Dir)
	}
	dir, err := os.MkdirTemp("", "mcp-proxy-pebble-")
	if err != nil {
		return nil, err
	}
	a := &ACMEServer{local: s, bin: bin, dir: dir,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}}}}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	tlsPort, httpPort, err := s.reserveProxyPorts()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	a.api, a.mgmt = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	if err := a.startDNS(); err != nil {
		return nil, err
	}
	leaf, err := s.ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		return nil, err
	}
	validity := opts.Validity
	if validity == 0 {
		validity = time.Hour
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           a.api,
		"managementListenAddress": a.mgmt,
		"certificate":             "cert.pem",
		"privateKey":              "key.pem",
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "the conformance stack's", "validityPeriod": int(validity / time.Second)}},
	}}
	if a.configJSON, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "pebble.json"), a.configJSON, 0o600); err != nil {
		return nil, err
	}
	a.args = []string{"-config", "pebble.json", "-dnsserver", a.dnsAddr}
	s.redisMu.Lock()
	s.acmeDirectory = a.DirectoryURL()
	s.redisMu.Unlock()
	s.mu.Lock()
	s.acme = a
	s.mu.Unlock()
	return a, nil
}

// DirectoryURL is Pebble's ACME directory.
func (a *ACMEServer) DirectoryURL() string { return "https://" + a.api + "/dir" }

// Start runs Pebble and makes the stack trust the root it made. Pebble's
// VA does not sleep before validating, and every nonce it hands out is
// good, so runs do not depend on chance.
func (a *ACMEServer) Start(ctx context.Context) error {
	if a.proc != nil {
		return errors.New("stack: Pebble is already running")
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	p, err := startProcessEnv(ctx, "pebble", a.bin, a.args, a.dir, "ACME directory available at", env)
	if err != nil {
		return err
	}
	a.proc = p
	root, err := a.fetchRoot(ctx)
	if err != nil {
		return err
	}
	a.local.ca.AddRoot(root)
	a.roots++
	return nil
}

// fetchRoot waits for Pebble to answer and reads the root it issues under.
func (a *ACMEServer) fetchRoot(ctx context.Context) (*x509.Certificate, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := a.get(ctx, "https://"+a.mgmt+"/roots/0")
		if err == nil {
			blk, _ := pem.Decode(body)
			if blk == nil {
				return nil, fmt.Errorf("pebble: /roots/0 holds no PEM certificate")
			}
			return x509.ParseCertificate(blk.Bytes)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("pebble: reading its root: %w\n%s", err, a.proc.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *ACMEServer) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// Stop stops Pebble; the DNS server stays.
func (a *ACMEServer) Stop() error {
	if a.proc == nil {
		return nil
	}
	err := a.proc.stop()
	a.proc = nil
	return err
}

// Log is what Pebble printed.
func (a *ACMEServer) Log() string {
	if a.proc == nil {
		return ""
	}
	return a.proc.out.String()
}

// Close stops Pebble and the DNS server and removes Pebble's files.
func (a *ACMEServer) Close() error {
	err := a.Stop()
	if a.dns != nil {
		_ = a.dns.Shutdown()
	}
	a.client.CloseIdleConnections()
	return errors.Join(err, os.RemoveAll(a.dir))
}

// startDNS serves DNS over TCP (Pebble's VA asks over TCP) on a loopback
// port: A records of 127.0.0.1 for the stack's names, no AAAA records, and
// NXDOMAIN for every other name, so nothing Pebble validates leaves this
// machine.
func (a *ACMEServer) startDNS() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.dnsAddr = ln.Addr().String()
	a.dns = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(a.answer)}
	started := make(chan struct{})
	a.dns.NotifyStartedFunc = func() { close(started) }
	go func() { _ = a.dns.ActivateAndServe() }()
	select {
	case <-started:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("stack: the DNS server for Pebble did not start")
	}
}

func (a *ACMEServer) answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
		if !a.local.servesName(name) {
			m.Rcode = dns.RcodeNameError
			continue
		}
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// servesName reports whether name is one of the stack's names or a route
// host of the configuration.
func (s *Local) servesName(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range append(append([]string{}, Names...), s.routeHosts...) {
		if n == name {
			return true
		}
	}
	return false
}

// reserveProxyPorts binds the proxy's listener and its http-01 listener
// now, so Pebble can be told where to validate before the proxy starts;
// StartProxy serves on them.
func (s *Local) reserveProxyPorts() (tlsPort, httpPort int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved == nil {
		if s.reserved, err = listenAgain(s.proxyAddr); err != nil {
			return 0, 0, err
		}
		s.proxyAddr = netip.MustParseAddrPort(s.reserved.Addr().String())
	}
	if s.challengeLn == nil {
		if s.challengeLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return 0, 0, err
		}
	}
	return int(s.proxyAddr.Port()), s.challengeLn.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
