package stack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/redisproc"
	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
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
	shared

	services map[string]*service // the doubles and the client host, by name

	mu         sync.Mutex
	proxyLog   syncbuf.Buffer
	proxyGate  gate
	stopProxy  context.CancelFunc
	proxyDone  chan int
	proxyAddr  netip.AddrPort // the proxy's last address, kept across restarts
	proxyClose func()         // closes the proxy's listener
	adminAddr  string         // the proxy's admin listener, once it serves
	routeHosts []string       // the from hosts of the configuration, served by the proxy
	replicas   []*replica     // more proxies on the same configuration
	redis      *exec.Cmd      // a Redis server, when a scenario asked for one
	miniRedis  *EmbeddedRedis // the embedded one, when redis-server is missing
	sentinels  *redisproc.Set // a Redis with Sentinels, when a scenario asked for one
	redisMu    sync.Mutex
	redisURL   string
	loopback   []string       // hosts outside the stack on this machine (TrustLoopbackHost)
	listen     netip.AddrPort // the configuration's listen address, when it names a loopback port
	// loginOrigins are route origins besides the docs' hosts whose sign-in
	// callback the identity provider knows (a harness's own configuration).
	loginMu      sync.Mutex
	loginOrigins []string

	// ACME (PrepareACMEServer): Pebble, the proxy's listener bound before
	// the proxy starts, and its http-01 listener.
	acme          *ACMEServer
	acmeDirectory string // read by the proxy's environment, under redisMu
	reserved      net.Listener
	challengeLn   net.Listener
	challengeAddr netip.AddrPort
	httpListen    string            // the configuration's tls.acme.http_listen
	redisEnv      map[string]string // the Sentinel example's variables

	// proxyEnv are variables of the proxy's environment a scenario set
	// (SetProxyEnv), under redisMu.
	proxyEnv map[string]string
}

// acmeRenewCheck is how often the proxy checks its ACME certificates for
// renewal in the stack: Pebble's certificates there live a minute.
const acmeRenewCheck = time.Second

// adminListen makes the proxy's admin listener take an ephemeral port, so
// that several proxies can run at once.
const adminListen = "127.0.0.1:0"

// AdminURL returns the base URL of the running proxy's admin listener.
func (s *Local) AdminURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminAddr == "" {
		return ""
	}
	return "http://" + s.adminAddr
}

// service is one in-process server of the stack. newHandler makes a fresh
// instance, as a restarted process would be.
type service struct {
	host       string
	newHandler func() (http.Handler, error)
	addr       netip.AddrPort
	srv        *http.Server
	gate       gate
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
	s := &Local{shared: newShared(ca, dir), services: make(map[string]*service)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	// In process, the doubles reach the network through the host map.
	inProcess := func(c mockas.Config) mockas.Config {
		c.Resolver, c.Dial, c.RootCAs = s.hosts, s.hosts.DialContext, ca.Pool()
		c.ControlSecret, c.Logger = s.secret, quiet
		return c
	}
	as, err := s.asSettings()
	if err != nil {
		return nil, err
	}
	asConfig := inProcess(as)

	mcpConfig := mockmcp.Config{
		ResourceURL:          UpstreamResource,
		AuthorizationServers: []string{"https://" + ASHost},
		HTTPClient:           &http.Client{Transport: s.transport, Timeout: 10 * time.Second},
		ControlSecret:        s.secret,
		Logger:               quiet,
	}
	for host, newHandler := range map[string]func() (http.Handler, error){
		ASHost: func() (http.Handler, error) {
			h, err := mockas.New(asConfig)
			if err != nil {
				return nil, fmt.Errorf("stack: authorization server: %w", err)
			}
			return h, nil
		},
		IdPHost: func() (http.Handler, error) {
			s.loginMu.Lock() // not s.mu: StartService holds it while it calls this
			origins := slices.Clone(s.loginOrigins)
			s.loginMu.Unlock()
			h, err := mockas.New(inProcess(s.idpSettings(origins...)))
			if err != nil {
				return nil, fmt.Errorf("stack: identity provider: %w", err)
			}
			return h, nil
		},
		UpstreamHost: func() (http.Handler, error) {
			h, err := mockmcp.New(mcpConfig)
			if err != nil {
				return nil, fmt.Errorf("stack: MCP server: %w", err)
			}
			return h, nil
		},
		ClientHost: func() (http.Handler, error) { return clientmeta.Handler(ClientHost, s.keySeed), nil },
	} {
		svc := &service{host: host, newHandler: newHandler}
		s.services[host] = svc
		if err := s.serve(svc); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serve starts svc with a fresh handler, on its previous address when it
// had one and that is still free.
func (s *Local) serve(svc *service) error {
	h, err := svc.newHandler()
	if err != nil {
		return err
	}
	leaf, err := s.ca.Issue(svc.host)
	if err != nil {
		return err
	}
	ln, err := listenAgain(svc.addr)
	if err != nil {
		return err
	}
	svc.srv = &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	svc.addr = netip.MustParseAddrPort(ln.Addr().String())
	s.hosts.Set(svc.host, 443, svc.addr)
	go svc.srv.ServeTLS(svc.gate.listener(ln), "", "")
	return nil
}

// listenAgain listens on 127.0.0.1 at addr's port when addr is valid and
// the port is free, else on an ephemeral port.
func listenAgain(addr netip.AddrPort) (net.Listener, error) {
	if addr.IsValid() {
		if ln, err := net.Listen("tcp", addr.String()); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// Mode implements Stack.
func (s *Local) Mode() string { return "local" }

// Addr is the loopback address (ip:port) that serves host on port 443, for
// a program that cannot use the stack's resolver (the official suite, in
// Node).
func (s *Local) Addr(host string) (string, error) {
	targets, err := s.hosts.Resolve(context.Background(), host, 443)
	if err != nil {
		return "", err
	}
	if len(targets) == 0 {
		return "", fmt.Errorf("stack: %s has no address", host)
	}
	return targets[0].String(), nil
}

// RefusedDials implements Stack.
func (s *Local) RefusedDials() []string { return s.hosts.RefusedDials() }

// WriteConfig implements Stack: the configuration goes in verbatim; the
// certificate and key it names are issued for its routes' hosts.
func (s *Local) WriteConfig(config string) error {
	shape := readShape(config)
	s.mu.Lock()
	s.routeHosts = routeHosts(shape)
	s.listen = loopbackListen(shape.Listen)
	s.httpListen = shape.TLS.ACME.HTTPListen
	if s.stopProxy != nil {
		// A reload may add route hosts: they reach the running proxy.
		for _, h := range s.routeHosts {
			s.hosts.Set(h, 443, s.proxyAddr)
		}
	}
	s.mu.Unlock()
	s.loginMu.Lock()
	added := false
	for _, r := range shape.Routes {
		u, err := url.Parse(r.From)
		if err != nil || u.Host == "" || u.Hostname() == ProxyHost || u.Hostname() == InnerProxyHost {
			continue
		}
		if o := "https://" + u.Host; !slices.Contains(s.loginOrigins, o) {
			s.loginOrigins = append(s.loginOrigins, o)
			added = true
		}
	}
	s.loginMu.Unlock()
	if added {
		// The identity provider learns the new sign-in callbacks as a
		// restarted process: before the proxy sends anyone there.
		if err := s.RestartService(context.Background(), IdPHost); err != nil {
			return err
		}
	}
	key, err := s.serviceKey()
	if err != nil {
		return err
	}
	return writeConfig(s.ca, s.dir, config, key, s.WorkloadToken)
}

// loopbackListen is a listen address that names a port on a loopback IP
// address, such as 127.0.0.1:24443; the zero value for any other (":443",
// a name, port 0), which the in-process stack replaces with its own.
func loopbackListen(listen string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0 {
		return netip.AddrPort{}
	}
	return ap
}

// WriteFile implements Stack.
func (s *Local) WriteFile(name string, data []byte) error { return writeBeside(s.dir, name, data) }

// writeBeside writes a file into the configuration's directory; name must
// be a plain file name.
func writeBeside(dir, name string, data []byte) error {
	if filepath.Base(name) != name || name == "config.yaml" {
		return fmt.Errorf("%q is not a file name beside the configuration", name)
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o600)
}

// configShape is what the stack reads from an operator configuration: the
// files to issue and where the proxy listens.
type configShape struct {
	Listen string `yaml:"listen"`
	TLS    struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
		ACME     struct {
			CAFile     string `yaml:"ca_file"`
			HTTPListen string `yaml:"http_listen"`
		} `yaml:"acme"`
	} `yaml:"tls"`
	Routes []struct {
		From string `yaml:"from"`
		MCP  struct {
			Server struct {
				UpstreamOAuth2 struct {
					ClientID       string `yaml:"client_id"`
					PrivateKeyFile string `yaml:"private_key_file"`
				} `yaml:"upstream_oauth2"`
				ServiceAccount struct {
					WorkloadIdentity struct {
						TokenFile string `yaml:"token_file"`
					} `yaml:"workload_identity"`
				} `yaml:"service_account"`
			} `yaml:"server"`
		} `yaml:"mcp"`
	} `yaml:"routes"`
}

// routeHosts are the hosts the proxy answers for: ProxyHost and every
// route's from.
func routeHosts(shape configShape) []string {
	names := []string{ProxyHost}
	for _, r := range shape.Routes {
		if u, err := url.Parse(r.From); err == nil && u.Hostname() != "" && u.Hostname() != ProxyHost {
			names = append(names, u.Hostname())
		}
	}
	return names
}

func readShape(config string) configShape {
	var shape configShape
	_ = yaml.Unmarshal([]byte(config), &shape) // a broken file is the proxy's to report
	return shape
}

// writeConfig writes config as dir/config.yaml and the files it names that
// the stack owns: the certificate and key, issued from ca for its routes'
// hosts, and the private key of the proxy's service client at the remote
// authorization server (serviceKey) where a route names that client and a
// key file.
// A route's workload token file that does not exist yet gets a valid
// workload token of the stack's cluster for the remote authorization
// server (workloadToken), as the kubelet would have written it; one that
// exists (a token a harness wrote, such as the official suite's) is kept.
func writeConfig(ca *testca.CA, dir, config string, serviceKey *ecdsa.PrivateKey, workloadToken func(audience string, expiry time.Time) (string, error)) error {
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		return err
	}
	shape := readShape(config)
	path := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, r := range shape.Routes {
		if f := r.MCP.Server.ServiceAccount.WorkloadIdentity.TokenFile; f != "" && !exists(path(f)) {
			tok, err := workloadToken("https://"+ASHost, time.Now().Add(time.Hour))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path(f)), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(path(f), []byte(tok+"\n"), 0o600); err != nil {
				return err
			}
		}
		if up := r.MCP.Server.UpstreamOAuth2; up.ClientID == UpstreamServiceClient && up.PrivateKeyFile != "" {
			f := up.PrivateKeyFile
			der, err := x509.MarshalPKCS8PrivateKey(serviceKey)
			if err != nil {
				return err
			}
			if err := os.WriteFile(path(f), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
				return err
			}
		}
	}
	if f := shape.TLS.ACME.CAFile; f != "" {
		// The ACME server's own HTTPS certificate is the run CA's.
		if err := os.WriteFile(path(filepath.Clean(f)), ca.CertPEM(), 0o644); err != nil {
			return err
		}
	}
	if shape.TLS.CertFile == "" || shape.TLS.KeyFile == "" {
		return nil
	}
	names := routeHosts(shape)
	leaf, err := ca.Issue(names...)
	if err != nil {
		return err
	}
	return leaf.WriteFiles(path(shape.TLS.CertFile), path(shape.TLS.KeyFile))
}

func (s *Local) env() func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == IdPClientSecretEnv {
			return s.idpSecret, true
		}
		if k == UpstreamClientSecretEnv {
			return UpstreamClientSecret, true
		}
		// Not s.mu: StartProxy holds it while the proxy reads its
		// configuration.
		s.redisMu.Lock()
		defer s.redisMu.Unlock()
		if k == ACMEDirectoryEnv {
			return s.acmeDirectory, s.acmeDirectory != ""
		}
		if k == RedisURLEnv {
			return s.redisURL, s.redisURL != ""
		}
		if v, ok := s.redisEnv[k]; ok {
			return v, true
		}
		v, ok := s.proxyEnv[k]
		return v, ok
	}
}

// trustFlags are the documented flags that let the proxy reach the stack's
// names, which resolve to loopback, and trust the run's CA.
func (s *Local) trustFlags() ([]string, error) {
	if err := os.WriteFile(filepath.Join(s.dir, "stack-ca.pem"), s.ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	flags := []string{"-ca-file", "stack-ca.pem", "-allow-private-host", ASHost, "-allow-private-host", ClientHost}
	if len(s.loopback) > 0 {
		// Servers outside the stack on this machine listen on ports of
		// their own (the suite's authorization server on another than its
		// MCP server), and -allow-private-host trusts one port: this is
		// the flag for trying the proxy on one machine.
		flags = append(flags, "-allow-loopback")
	}
	return flags, nil
}

// SetProxyEnv puts a variable into the environment of the proxies the
// stack starts from now on (as the operator would export it before
// mcp-proxy serve), such as the OTEL_* variables of the docs' tracing
// examples.
func (s *Local) SetProxyEnv(k, v string) {
	s.redisMu.Lock()
	defer s.redisMu.Unlock()
	if s.proxyEnv == nil {
		s.proxyEnv = map[string]string{}
	}
	s.proxyEnv[k] = v
}

// TrustLoopbackHost makes host resolve to 127.0.0.1 on every port, for the
// harness and the proxy alike, and lets the proxy reach loopback on any
// port (-allow-loopback): for servers outside the stack that run on this
// machine, such as the official conformance suite's. Call it before
// StartProxy.
func (s *Local) TrustLoopbackHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts.SetLoopback(host)
	s.loopback = append(s.loopback, host)
}

// StartProxy implements Stack.
func (s *Local) StartProxy(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopProxy != nil {
		return errors.New("stack: the proxy is already running")
	}
	raw := s.reserved
	s.reserved = nil
	if raw == nil {
		var err error
		if s.listen.IsValid() {
			// A configuration that names its loopback port gets it: its
			// routes' from may name the port too (https://localhost:24443).
			raw, err = net.Listen("tcp", s.listen.String())
		} else {
			raw, err = listenAgain(s.proxyAddr)
		}
		if err != nil {
			return err
		}
	}
	ln := s.proxyGate.listener(raw)
	cancel, done, err := s.runProxy(ctx, ln, func(a net.Addr) { s.adminAddr = a.String() })
	if err != nil {
		return err
	}
	s.proxyAddr = netip.MustParseAddrPort(raw.Addr().String())
	for _, h := range s.routeHosts {
		s.hosts.Set(h, 443, s.proxyAddr)
	}
	s.stopProxy, s.proxyDone, s.proxyClose = cancel, done, func() { ln.Close() }
	return nil
}

// runProxy runs `mcp-proxy serve -config config.yaml` with the stack's
// trust flags on ln, and returns once it serves: cancel stops it, done
// gives its exit code. adminReady, when set, learns the admin address.
func (s *Local) runProxy(ctx context.Context, ln net.Listener, adminReady func(net.Addr)) (context.CancelFunc, chan int, error) {
	flags, err := s.trustFlags()
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	challenge, err := s.challengeListener()
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan int, 1)
	httpListen := s.httpListen
	env := cli.Env{
		Stdout: &s.proxyLog, Stderr: &s.proxyLog, Dir: s.dir, LookupEnv: s.env(),
		Listen: func(network, addr string) (net.Listener, error) {
			switch {
			case addr == adminListen:
				return net.Listen(network, addr)
			case challenge != nil && addr == httpListen:
				return challenge, nil
			}
			return ln, nil
		},
		Network:    proxy.Options{Resolver: s.hosts, Dial: s.hosts.DialContext, ACMERenewCheckInterval: acmeRenewCheck},
		Ready:      func(*proxy.Proxy, net.Addr) { close(ready) },
		AdminReady: adminReady,
	}
	args := append([]string{"serve", "-config", "config.yaml", "-admin-listen", adminListen}, flags...)
	go func() { done <- cli.Run(runCtx, args, env) }()
	select {
	case <-ready:
		return cancel, done, nil
	case code := <-done:
		cancel()
		ln.Close()
		return nil, nil, fmt.Errorf("mcp-proxy serve exited with %d:\n%s", code, s.proxyLog.String())
	case <-ctx.Done():
		cancel()
		ln.Close()
		<-done
		return nil, nil, ctx.Err()
	}
}

// challengeListener is the proxy's http-01 listener when an ACME server
// reserved one: the reserved listener the first time, then one on the
// same port. The caller holds s.mu.
func (s *Local) challengeListener() (net.Listener, error) {
	if s.challengeLn != nil {
		ln := s.challengeLn
		s.challengeLn = nil
		s.challengeAddr = netip.MustParseAddrPort(ln.Addr().String())
		return ln, nil
	}
	if !s.challengeAddr.IsValid() {
		return nil, nil
	}
	return listenAgain(s.challengeAddr)
}

// haltProxy stops the proxy, if it runs. The caller holds s.mu.
func (s *Local) haltProxy() {
	if s.stopProxy == nil {
		return
	}
	// Idle client connections go first, so the proxy's graceful shutdown
	// has no HTTP/2 connection to wait out; a paused proxy is let go.
	s.transport.CloseIdleConnections()
	s.proxyGate.resume()
	s.stopProxy()
	<-s.proxyDone
	s.proxyClose()
	s.stopProxy, s.proxyDone, s.proxyClose = nil, nil, nil
}

func (s *Local) service(name string) (*service, error) {
	svc, ok := s.services[name]
	if !ok {
		return nil, fmt.Errorf("stack: %q: %w", name, ErrUnknownService)
	}
	return svc, nil
}

// StopService implements Stack: the service shuts down as the doubles do
// on SIGTERM (open connections get five seconds, as docker stop gives a
// container), and new connections are refused.
func (s *Local) StopService(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == ProxyHost {
		if s.stopProxy == nil {
			return errors.New("stack: the proxy is not running")
		}
		s.haltProxy()
		return nil
	}
	svc, err := s.service(name)
	if err != nil {
		return err
	}
	if svc.srv == nil {
		return fmt.Errorf("stack: %s is not running", name)
	}
	svc.gate.resume()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := svc.srv.Shutdown(ctx); err != nil {
		svc.srv.Close()
	}
	svc.srv = nil
	return nil
}

// StartService implements Stack: a fresh instance of the service, on its
// old address when that is still free.
func (s *Local) StartService(ctx context.Context, name string) error {
	if name == ProxyHost {
		return s.StartProxy(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, err := s.service(name)
	if err != nil {
		return err
	}
	if svc.srv != nil {
		return fmt.Errorf("stack: %s is already running", name)
	}
	return s.serve(svc)
}

// PauseService implements Stack: the service accepts no more connections
// (the kernel still queues them) and its open connections stall.
func (s *Local) PauseService(_ context.Context, name string) error {
	g, err := s.gateOf(name)
	if err != nil {
		return err
	}
	g.pause()
	return nil
}

// UnpauseService implements Stack.
func (s *Local) UnpauseService(_ context.Context, name string) error {
	g, err := s.gateOf(name)
	if err != nil {
		return err
	}
	g.resume()
	return nil
}

func (s *Local) gateOf(name string) (*gate, error) {
	if name == ProxyHost {
		return &s.proxyGate, nil
	}
	svc, err := s.service(name)
	if err != nil {
		return nil, err
	}
	return &svc.gate, nil
}

// RestartService implements Stack.
func (s *Local) RestartService(ctx context.Context, name string) error {
	if err := s.StopService(ctx, name); err != nil {
		return err
	}
	return s.StartService(ctx, name)
}

// RestartProxy implements Stack.
func (s *Local) RestartProxy(ctx context.Context) error { return s.RestartService(ctx, ProxyHost) }

// RunProxy implements Stack.
// Commands that reach the network (discover) get the stack's trust flags
// after the command name, as StartProxy gives them to serve.
func (s *Local) RunProxy(ctx context.Context, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	if len(args) > 0 && args[0] == "discover" {
		flags, err := s.trustFlags()
		if err != nil {
			return "", err.Error(), 1
		}
		args = append(append([]string{args[0]}, flags...), args[1:]...)
	}
	code := cli.Run(ctx, args, cli.Env{Stdout: &stdout, Stderr: &stderr, Dir: s.dir, LookupEnv: s.env(),
		Network: proxy.Options{Resolver: s.hosts, Dial: s.hosts.DialContext}})
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
	s.haltProxy()
	s.stopExtras()
	for _, ln := range []net.Listener{s.reserved, s.challengeLn} {
		if ln != nil {
			ln.Close()
		}
	}
	acme := s.acme
	s.acme = nil
	// The doubles stop at once: a scenario is over, and waiting for their
	// open streams to drain would only slow the run.
	for _, svc := range s.services {
		svc.gate.resume()
		if svc.srv != nil {
			svc.srv.Close()
			svc.srv = nil
		}
	}
	s.mu.Unlock()
	var err error
	if acme != nil {
		err = acme.Close()
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// gate freezes a service as a paused process is frozen: while it is shut,
// the listener hands out no new connection (the kernel still completes
// TCP handshakes into its backlog) and open connections neither read nor
// write. The zero value is open.
type gate struct {
	mu   sync.Mutex
	shut chan struct{} // non-nil while paused; closed on resume
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// wait returns when the gate is open or done is closed.
func (g *gate) wait(done <-chan struct{}) {
	g.mu.Lock()
	shut := g.shut
	g.mu.Unlock()
	if shut == nil {
		return
	}
	select {
	case <-shut:
	case <-done:
	}
}

func (g *gate) listener(ln net.Listener) net.Listener {
	return &gatedListener{Listener: ln, g: g, done: make(chan struct{})}
}

type gatedListener struct {
	net.Listener
	g    *gate
	once sync.Once
	done chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.g.wait(l.done)
	select {
	case <-l.done:
		c.Close()
		return nil, net.ErrClosed
	default:
	}
	return &gatedConn{Conn: c, g: l.g, done: make(chan struct{})}, nil
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type gatedConn struct {
	net.Conn
	g    *gate
	once sync.Once
	done chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.g.wait(c.done)
	n, err := c.Conn.Read(p)
	c.g.wait(c.done) // what arrived during a pause is read after it
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.g.wait(c.done)
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// CopyProxyLog writes what the proxy has logged so far to w, and then
// every line it logs, as it logs it (make demo keeps it in a file).
func (s *Local) CopyProxyLog(w io.Writer) error { return s.proxyLog.Tee(w) }

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

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
