package stack

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/netguard"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockas"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
	"github.com/mcp-proxy/mcp-proxy/proxy"
	"github.com/mcp-proxy/mcp-proxy/proxy/cli"
)

// Local is the in-process stack: every component listens on a 127.0.0.1
// ephemeral port, and every HTTP client dials through one host map that
// sends the documented names there.
type Local struct {
	ca        *testca.CA
	hosts     *hostmap.Map
	transport *http.Transport
	dir       string // the proxy's working directory
	secret    string // the control API secret
	idpSecret string

	servers []*http.Server

	mu        sync.Mutex
	proxyLog  syncBuffer
	stopProxy context.CancelFunc
	proxyDone chan int
}

var _ Stack = (*Local)(nil)

// NewLocal starts the doubles and the client metadata host. The proxy starts
// with StartProxy once a scenario has given its configuration.
func NewLocal() (_ *Local, err error) {
	ca, err := testca.New()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcp-proxy-stack-")
	if err != nil {
		return nil, err
	}
	s := &Local{
		ca:        ca,
		hosts:     hostmap.New(),
		dir:       dir,
		secret:    "control-" + randomHex(),
		idpSecret: "idp-secret-" + randomHex(),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.transport = netguard.NewTransport(s.hosts.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()})
	quiet := slog.New(slog.DiscardHandler)

	as, err := mockas.New(mockas.Config{
		Issuer:        "https://" + ASHost,
		Resolver:      s.hosts,
		Dial:          s.hosts.DialContext,
		TrustedHosts:  []string{ProxyHost},
		RootCAs:       ca.Pool(),
		ControlSecret: s.secret,
		Logger:        quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("stack: authorization server: %w", err)
	}
	idp, err := mockas.New(mockas.Config{
		Issuer: "https://" + IdPHost,
		Clients: []mockas.Client{{
			ID: "mcp-proxy", Secret: s.idpSecret, Name: "mcp-proxy",
			RedirectURIs: []string{"https://" + ProxyHost + "/.mcp-proxy/login/callback"},
		}},
		DisableCIMD:   true,
		Resolver:      s.hosts,
		Dial:          s.hosts.DialContext,
		RootCAs:       ca.Pool(),
		ControlSecret: s.secret,
		Logger:        quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("stack: identity provider: %w", err)
	}
	mcp, err := mockmcp.New(mockmcp.Config{
		ResourceURL:          UpstreamResource,
		AuthorizationServers: []string{"https://" + ASHost},
		HTTPClient:           &http.Client{Transport: s.transport, Timeout: 10 * time.Second},
		ControlSecret:        s.secret,
		Logger:               quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("stack: MCP server: %w", err)
	}
	for host, h := range map[string]http.Handler{
		ASHost:       as,
		IdPHost:      idp,
		UpstreamHost: mcp,
		ClientHost:   http.HandlerFunc(s.clientMetadata),
	} {
		if err := s.serve(host, h); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Local) serve(host string, h http.Handler) error {
	leaf, err := s.ca.Issue(host)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	s.servers = append(s.servers, srv)
	s.hosts.Set(host, 443, netip.MustParseAddrPort(ln.Addr().String()))
	go srv.ServeTLS(ln, "", "")
	return nil
}

// clientMetadata publishes MCP clients' metadata documents:
// /NAME/client-metadata.json.
func (s *Local) clientMetadata(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/client-metadata.json")
	if !ok || name == "" || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"client_id":                  s.ClientMetadataURL(name),
		"client_name":                "MCP client " + name,
		"client_uri":                 "https://" + ClientHost + "/" + name,
		"redirect_uris":              []string{s.ClientRedirectURL(name)},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
}

// Mode implements Stack.
func (s *Local) Mode() string { return "local" }

// Transport implements Stack.
func (s *Local) Transport() http.RoundTripper { return s.transport }

// ClientMetadataURL implements Stack.
func (s *Local) ClientMetadataURL(name string) string {
	return "https://" + ClientHost + "/" + name + "/client-metadata.json"
}

// ClientRedirectURL implements Stack.
func (s *Local) ClientRedirectURL(name string) string {
	return "https://" + ClientHost + "/" + name + "/callback"
}

func (s *Local) control(host string) *control.Client {
	return &control.Client{BaseURL: "https://" + host, Secret: s.secret, HTTP: &http.Client{Transport: s.transport, Timeout: 10 * time.Second}}
}

// AS implements Stack.
func (s *Local) AS() *control.Client { return s.control(ASHost) }

// IdP implements Stack.
func (s *Local) IdP() *control.Client { return s.control(IdPHost) }

// MCP implements Stack.
func (s *Local) MCP() *control.Client { return s.control(UpstreamHost) }

// RefusedDials implements Stack.
func (s *Local) RefusedDials() []string { return s.hosts.RefusedDials() }

// WriteConfig implements Stack: the configuration goes in verbatim; the
// certificate and key it names are issued for its routes' hosts.
func (s *Local) WriteConfig(config string) error {
	if err := os.WriteFile(filepath.Join(s.dir, "config.yaml"), []byte(config), 0o600); err != nil {
		return err
	}
	var shape struct {
		TLS struct {
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls"`
		Routes []struct {
			From string `yaml:"from"`
		} `yaml:"routes"`
	}
	_ = yaml.Unmarshal([]byte(config), &shape) // a broken file is the proxy's to report
	if shape.TLS.CertFile == "" || shape.TLS.KeyFile == "" {
		return nil
	}
	names := []string{ProxyHost}
	for _, r := range shape.Routes {
		if u, err := url.Parse(r.From); err == nil && u.Hostname() != "" && u.Hostname() != ProxyHost {
			names = append(names, u.Hostname())
		}
	}
	leaf, err := s.ca.Issue(names...)
	if err != nil {
		return err
	}
	return leaf.WriteFiles(s.path(shape.TLS.CertFile), s.path(shape.TLS.KeyFile))
}

func (s *Local) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.dir, p)
}

func (s *Local) env() func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == IdPClientSecretEnv {
			return s.idpSecret, true
		}
		return "", false
	}
}

// trustFlags are the documented flags that let the proxy reach the stack's
// names, which resolve to loopback, and trust the run's CA.
func (s *Local) trustFlags() ([]string, error) {
	if err := os.WriteFile(filepath.Join(s.dir, "stack-ca.pem"), s.ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	return []string{"-ca-file", "stack-ca.pem", "-allow-private-host", ASHost, "-allow-private-host", ClientHost}, nil
}

// StartProxy implements Stack.
func (s *Local) StartProxy(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopProxy != nil {
		return errors.New("stack: the proxy is already running")
	}
	flags, err := s.trustFlags()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan int, 1)
	env := cli.Env{
		Stdout: &s.proxyLog, Stderr: &s.proxyLog, Dir: s.dir, LookupEnv: s.env(),
		Listen:  func(string, string) (net.Listener, error) { return ln, nil },
		Network: proxy.Options{Resolver: s.hosts, Dial: s.hosts.DialContext},
		Ready:   func(*proxy.Proxy, net.Addr) { close(ready) },
	}
	args := append([]string{"serve", "-config", "config.yaml"}, flags...)
	go func() { done <- cli.Run(runCtx, args, env) }()
	select {
	case <-ready:
	case code := <-done:
		cancel()
		ln.Close()
		return fmt.Errorf("mcp-proxy serve exited with %d:\n%s", code, s.proxyLog.String())
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	s.hosts.Set(ProxyHost, 443, netip.MustParseAddrPort(ln.Addr().String()))
	s.stopProxy, s.proxyDone = cancel, done
	return nil
}

// RunProxy implements Stack.
func (s *Local) RunProxy(ctx context.Context, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := cli.Run(ctx, args, cli.Env{Stdout: &stdout, Stderr: &stderr, Dir: s.dir, LookupEnv: s.env()})
	return stdout.String(), stderr.String(), code
}

// ProxyLog implements Stack.
func (s *Local) ProxyLog() string { return s.proxyLog.String() }

// Close implements Stack.
func (s *Local) Close() error {
	// Idle client connections go first, so the proxy's graceful shutdown
	// has no HTTP/2 connection to wait out.
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	s.mu.Lock()
	if s.stopProxy != nil {
		s.stopProxy()
		<-s.proxyDone
		s.stopProxy = nil
	}
	s.mu.Unlock()
	// The doubles stop at once: a scenario is over, and waiting for their
	// open streams to drain would only slow the run.
	for _, srv := range s.servers {
		srv.Close()
	}
	return os.RemoveAll(s.dir)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Names are every hostname the stack serves.
var Names = []string{ProxyHost, UpstreamHost, ASHost, IdPHost, ClientHost}

// CAPEM returns the run's CA certificate, for a person's browser or MCP
// client to trust.
func (s *Local) CAPEM() []byte { return s.ca.CertPEM() }

// Certificate issues a server certificate for names from the run's CA.
func (s *Local) Certificate(names ...string) (tls.Certificate, error) {
	leaf, err := s.ca.Issue(names...)
	if err != nil {
		return tls.Certificate{}, err
	}
	return leaf.TLS, nil
}
