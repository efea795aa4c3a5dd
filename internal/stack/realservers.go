package stack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/hydralogin"
	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

// The real servers of the stack: Dex as the operator's identity provider
// at IdPHost, Ory Hydra as the remote authorization server at ASHost (with
// the harness's login and consent app at HydraLoginHost), and a mock MCP
// server at UpstreamHost that trusts Hydra. They replace the doubles at
// those names for one scenario.
const (
	// DexIssuer is Dex's issuer: Dex serves under a path.
	DexIssuer = "https://" + IdPHost + "/dex"
	// HydraIssuer is Hydra's issuer. Hydra publishes its issuer with a
	// terminating slash, as its configuration names it.
	HydraIssuer = "https://" + ASHost + "/"
	// HydraLoginHost serves the login and consent app Hydra sends users to.
	HydraLoginHost = "login.provider.com"
	// HydraConfidentialClient is the client the docs register for the proxy
	// at Hydra through its admin API; its secret is UpstreamClientSecret.
	HydraConfidentialClient = "mcp-proxy-confidential"
	// hydraSystemSecret is Hydra's system secret in the stack (a test value).
	hydraSystemSecret = "conformance-stack-hydra-system-secret"
)

// RealServersDirEnv names the directory that holds the dex and hydra
// binaries (make real-servers builds them into build/realservers).
const RealServersDirEnv = "REALSERVERS_DIR"

// RealServerOptions tune the real servers for a scenario.
type RealServerOptions struct {
	// Dir holds the dex and hydra binaries.
	Dir string
	// AccessTokenTTL is Hydra's access token lifetime; zero keeps Hydra's
	// default (one hour).
	AccessTokenTTL time.Duration
}

// RealServers are the running Dex, Hydra, login app, counting front and
// mock MCP server of a scenario.
type RealServers struct {
	local    *Local
	dir      string
	procs    []*process
	servers  []*http.Server
	Login    *hydralogin.App
	adminURL string
	admin    *http.Client

	mu        sync.Mutex
	grants    map[string]int // token requests that reached Hydra, by grant_type
	lastToken time.Time      // when Hydra last answered a token request
	// registered are the credentials Hydra handed out in registration
	// answers, so a scenario can prove the proxy never shows them.
	registered []string
	prev       map[string]netip.AddrPort
}

// RealServerBinaries returns dir's dex and hydra, or an error saying how to
// build them.
func RealServerBinaries(dir string) (dex, hydra string, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", err
	}
	dex, hydra = filepath.Join(dir, "dex"), filepath.Join(dir, "hydra")
	for _, b := range []string{dex, hydra} {
		if fi, err := os.Stat(b); err != nil || fi.Mode()&0o111 == 0 {
			return "", "", fmt.Errorf("%s is not built (make real-servers builds Dex and Hydra into %s)", b, dir)
		}
	}
	return dex, hydra, nil
}

// StartRealServers starts Dex, Hydra, the login app and a mock MCP server
// that trusts Hydra, each on a 127.0.0.1 port with a certificate of the
// run's CA, and maps IdPHost, ASHost and UpstreamHost onto them (until
// Close, which maps the doubles back).
func (s *Local) StartRealServers(ctx context.Context, opts RealServerOptions) (_ *RealServers, err error) {
	dexBin, hydraBin, err := RealServerBinaries(opts.Dir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcp-proxy-realservers-")
	if err != nil {
		return nil, err
	}
	rs := &RealServers{local: s, dir: dir, grants: map[string]int{}, prev: map[string]netip.AddrPort{}}
	defer func() {
		if err != nil {
			rs.Close()
		}
	}()
	for _, h := range []string{IdPHost, ASHost, UpstreamHost} {
		if svc := s.services[h]; svc != nil {
			rs.prev[h] = svc.addr
		}
	}
	if err := rs.startDex(ctx, dexBin); err != nil {
		return nil, err
	}
	if err := rs.startHydra(ctx, hydraBin, opts); err != nil {
		return nil, err
	}
	if err := rs.startMCP(); err != nil {
		return nil, err
	}
	return rs, nil
}

// files issues a certificate for names and writes it with its key into the
// servers' directory.
func (rs *RealServers) files(base string, names ...string) (cert, key string, err error) {
	leaf, err := rs.local.ca.Issue(names...)
	if err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(rs.dir, base+".crt"), filepath.Join(rs.dir, base+".key")
	return cert, key, leaf.WriteFiles(cert, key)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (rs *RealServers) startDex(ctx context.Context, bin string) error {
	cert, key, err := rs.files("dex", IdPHost)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	type password struct {
		Email    string   `json:"email"`
		Hash     string   `json:"hash"`
		Username string   `json:"username"`
		UserID   string   `json:"userID"`
		Groups   []string `json:"groups,omitempty"`
	}
	var passwords []password
	// alice is in platform, as at mockas (mockas.DefaultUsers).
	groups := map[string][]string{"alice": {"platform"}}
	for _, user := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(actors.Passwords[user]), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		passwords = append(passwords, password{Email: user, Hash: string(h), Username: user, UserID: user, Groups: groups[user]})
	}
	cfg := map[string]any{
		"issuer":  DexIssuer,
		"storage": map[string]any{"type": "memory"},
		"web":     map[string]any{"https": fmt.Sprintf("127.0.0.1:%d", port), "tlsCert": cert, "tlsKey": key},
		"logger":  map[string]any{"level": "info", "format": "text"},
		"oauth2":  map[string]any{"skipApprovalScreen": true, "responseTypes": []string{"code"}},
		// The proxy signs users in with the local password database.
		"enablePasswordDB": true,
		"staticPasswords":  passwords,
		"staticClients": []map[string]any{{
			"id": "mcp-proxy", "secret": rs.local.idpSecret, "name": "mcp-proxy",
			"redirectURIs": []string{"https://" + ProxyHost + "/.mcp-proxy/login/callback", "https://" + InnerProxyHost + "/.mcp-proxy/login/callback"},
		}},
	}
	path := filepath.Join(rs.dir, "dex.json") // Dex reads YAML, and JSON is YAML
	if err := writeJSON(path, cfg); err != nil {
		return err
	}
	p, err := startProcess(ctx, "dex", bin, []string{"serve", path}, rs.dir, `msg="listening on" server=https`)
	if err != nil {
		return err
	}
	rs.procs = append(rs.procs, p)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if err := waitHTTP(ctx, p, rs.client(IdPHost, addr), "https://"+IdPHost+"/dex/.well-known/openid-configuration"); err != nil {
		return err
	}
	rs.local.hosts.Set(IdPHost, 443, addr)
	return nil
}

func (rs *RealServers) startHydra(ctx context.Context, bin string, opts RealServerOptions) error {
	cert, key, err := rs.files("hydra", ASHost)
	if err != nil {
		return err
	}
	public, err := freePort()
	if err != nil {
		return err
	}
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	ttl := map[string]any{}
	if opts.AccessTokenTTL > 0 {
		ttl["access_token"] = opts.AccessTokenTTL.String()
	}
	cfg := map[string]any{
		"dsn": "memory",
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": public},
			"admin":  map[string]any{"host": "127.0.0.1", "port": adminPort},
			"tls":    map[string]any{"enabled": true, "cert": map[string]any{"path": cert}, "key": map[string]any{"path": key}},
		},
		"urls": map[string]any{
			"self":    map[string]any{"issuer": HydraIssuer},
			"login":   "https://" + HydraLoginHost + "/login",
			"consent": "https://" + HydraLoginHost + "/consent",
			"logout":  "https://" + HydraLoginHost + "/logout",
		},
		"secrets":    map[string]any{"system": []string{hydraSystemSecret}},
		"strategies": map[string]any{"access_token": "jwt"},
		"oidc":       map[string]any{"dynamic_client_registration": map[string]any{"enabled": true}},
		"oauth2":     map[string]any{"pkce": map[string]any{"enforced_for_public_clients": true}},
		// Without this key Hydra's discovery names no registration_endpoint.
		"webfinger": map[string]any{"oidc_discovery": map[string]any{"client_registration_url": "https://" + ASHost + "/oauth2/register"}},
		"ttl":       ttl,
		"log":       map[string]any{"level": "info", "format": "text"},
	}
	path := filepath.Join(rs.dir, "hydra.json")
	if err := writeJSON(path, cfg); err != nil {
		return err
	}
	p, err := startProcess(ctx, "hydra", bin, []string{"serve", "all", "-c", path, "--sqa-opt-out"}, rs.dir, "Setting up http server on 127.0.0.1:"+fmt.Sprint(public))
	if err != nil {
		return err
	}
	rs.procs = append(rs.procs, p)
	publicAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(public))
	rs.admin = rs.client(ASHost, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(adminPort)))
	rs.adminURL = "https://" + ASHost
	if err := waitHTTP(ctx, p, rs.admin, rs.adminURL+"/health/ready"); err != nil {
		return err
	}
	if err := waitHTTP(ctx, p, rs.client(ASHost, publicAddr), "https://"+ASHost+"/.well-known/openid-configuration"); err != nil {
		return err
	}

	// The front counts the token requests that reach Hydra's public port.
	front := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "https", Host: ASHost})
			r.Out.Host = r.In.Host
		},
		Transport: rs.client(ASHost, publicAddr).Transport,
		ErrorLog:  slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method != http.MethodPost || resp.Request.URL.Path != "/oauth2/register" {
				return nil
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			var reg struct {
				Secret string `json:"client_secret"`
				Token  string `json:"registration_access_token"`
			}
			if json.Unmarshal(body, &reg) == nil {
				rs.mu.Lock()
				for _, v := range []string{reg.Secret, reg.Token} {
					if v != "" {
						rs.registered = append(rs.registered, v)
					}
				}
				rs.mu.Unlock()
			}
			return nil
		},
	}
	if err := rs.serve(ASHost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth2/token" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body.Close()
			form, _ := url.ParseQuery(string(body))
			rs.mu.Lock()
			rs.grants[form.Get("grant_type")]++
			rs.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		front.ServeHTTP(w, r)
		if r.URL.Path == "/oauth2/token" {
			rs.mu.Lock()
			rs.lastToken = time.Now()
			rs.mu.Unlock()
		}
	})); err != nil {
		return err
	}
	rs.Login = &hydralogin.App{AdminURL: rs.adminURL, HTTP: rs.admin}
	rs.Login.SetAudience(UpstreamResource)
	return rs.serve(HydraLoginHost, rs.Login)
}

// startMCP serves a mock MCP server at UpstreamHost that trusts Hydra: it
// verifies Hydra's JWT access tokens with the keys of Hydra's JWKS.
func (rs *RealServers) startMCP() error {
	h, err := mockmcp.New(mockmcp.Config{
		ResourceURL:          UpstreamResource,
		AuthorizationServers: []string{HydraIssuer},
		ExternalIssuers:      []string{HydraIssuer},
		// Hydra issues refresh tokens only for offline_access.
		ScopesSupported: []string{"offline_access"},
		HTTPClient:      &http.Client{Transport: rs.local.transport, Timeout: 10 * time.Second},
		ControlSecret:   rs.local.secret,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	return rs.serve(UpstreamHost, h)
}

// serve serves h under host with a certificate of the run's CA.
func (rs *RealServers) serve(host string, h http.Handler) error {
	leaf, err := rs.local.ca.Issue(host)
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
	rs.servers = append(rs.servers, srv)
	go srv.ServeTLS(ln, "", "")
	rs.local.hosts.Set(host, 443, netip.MustParseAddrPort(ln.Addr().String()))
	return nil
}

// client reaches addr as host, trusting the run's CA.
func (rs *RealServers) client(host string, addr netip.AddrPort) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: rs.local.ca.Pool(), ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr.String())
			},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TokenRequests returns how many token requests of grantType ("" for all)
// reached Hydra.
func (rs *RealServers) TokenRequests(grantType string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if grantType != "" {
		return rs.grants[grantType]
	}
	n := 0
	for _, c := range rs.grants {
		n += c
	}
	return n
}

// LastTokenAnswer returns when Hydra last answered a token request.
func (rs *RealServers) LastTokenAnswer() time.Time {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.lastToken
}

// RegisteredCredentials returns the client secrets and registration
// access tokens Hydra handed out in answers to registrations.
func (rs *RealServers) RegisteredCredentials() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.registered...)
}

// HydraAdmin calls Hydra's admin API: body (when not nil) is sent as JSON,
// and the answer is decoded into out (when not nil).
func (rs *RealServers) HydraAdmin(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rs.adminURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rs.admin.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra admin %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Logs returns what Dex and Hydra printed.
func (rs *RealServers) Logs() string {
	var b strings.Builder
	for _, p := range rs.procs {
		fmt.Fprintf(&b, "--- %s\n%s", p.name, p.out.String())
	}
	return b.String()
}

// Close stops the real servers and maps the doubles back.
func (rs *RealServers) Close() error {
	var errs []error
	for _, srv := range rs.servers {
		srv.Close()
	}
	for _, p := range rs.procs {
		errs = append(errs, p.stop())
	}
	for h, addr := range rs.prev {
		if addr.IsValid() {
			rs.local.hosts.Set(h, 443, addr)
		}
	}
	rs.local.hosts.Delete(HydraLoginHost, 443)
	errs = append(errs, os.RemoveAll(rs.dir))
	return errors.Join(errs...)
}

// process is a real server's process; out collects what it prints.
type process struct {
	name string
	cmd  *exec.Cmd
	out  syncbuf.Buffer
	done chan struct{}
	err  error
}

// startProcess runs bin and returns once it printed a line containing
// ready: the server says it is about to serve. It fails when the process
// exits first.
func startProcess(ctx context.Context, name, bin string, args []string, dir, ready string) (*process, error) {
	return startProcessEnv(ctx, name, bin, args, dir, ready, nil)
}

// startProcessEnv is startProcess with more environment variables
// (NAME=value) beside PATH and HOME.
func startProcessEnv(ctx context.Context, name, bin string, args []string, dir, ready string, env []string) (*process, error) {
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			p.out.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(seen) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	select {
	case <-seen:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before serving (%v):\n%s", name, p.err, p.out.String())
	case <-ctx.Done():
		_ = p.stop()
		return nil, fmt.Errorf("%s did not start: %w:\n%s", name, ctx.Err(), p.out.String())
	}
}

// stop ends the process: SIGTERM, then SIGKILL after five seconds.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// waitHTTP waits until u answers 200. The process has printed that it is
// about to listen; the few connection refusals until it does are retried
// on a short tick, and the wait ends when the process exits.
func waitHTTP(ctx context.Context, p *process, c *http.Client, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", u, resp.Status)
		}
		last = err
		select {
		case <-tick.C:
		case <-p.done:
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.out.String())
		case <-ctx.Done():
			return fmt.Errorf("%s: %v (last: %v):\n%s", p.name, ctx.Err(), last, p.out.String())
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
