package bench

import (
	"bufio"
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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/idp"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// The bench's host names; every one of them is a 127.0.0.1 port.
const (
	ProxyHost         = "mcp.example.com"                // mcp-proxy's route to the SDK server
	ProxyCannedHost   = "canned-mcp.example.com"         // mcp-proxy's route to the canned answer
	ProxyPolicyHost   = "policy-canned-mcp.example.com"  // the same, through a route with a 20-rule tool policy
	SDKHost           = "remote-mcp.provider.com"        // the SDK echo server
	CannedHost        = "canned.provider.com"            // the canned answer
	BareHost          = "bare-hop.example.com"           // the bare hop to the SDK server
	BareCannedHost    = "bare-hop-canned.example.com"    // the bare hop to the canned answer
	StreamsHost       = "streams.provider.com"           // idle event streams (benchupstream -mode streams)
	ProxyStreamsHost  = "streams-mcp.example.com"        // mcp-proxy's route to the streams upstream
	BareStreamsHost   = "bare-hop-streams.example.com"   // the bare hop to the streams upstream
	PooledHost        = "pooled-hop.example.com"         // the pooled hop (a bare hop with a buffer pool) to the SDK server
	PooledCannedHost  = "pooled-hop-canned.example.com"  // the pooled hop to the canned answer
	PooledStreamsHost = "pooled-hop-streams.example.com" // the pooled hop to the streams upstream
	ASHost            = "auth.provider.com"              // the remote authorization server (mockas)
	IdPHost           = "idp.example.com"                // the operator's identity provider (mockas)
	ClientHost        = "client.example.net"             // MCP clients' metadata documents

	// The pooled hop forwarding over HTTP/1.1 only, as mcp-proxy does.
	PooledH1Host        = "pooled-h1-hop.example.com"         // to the SDK server
	PooledH1CannedHost  = "pooled-h1-hop-canned.example.com"  // to the canned answer
	PooledH1StreamsHost = "pooled-h1-hop-streams.example.com" // to the streams upstream
)

// The remote authorization server's clients: the proxy's (public, both
// route hosts' callbacks) and the one whose client credentials token the
// direct and bare hop targets carry.
const (
	proxyClient   = "mcp-proxy-bench"
	directClient  = "bench-direct"
	directSecret  = "bench-direct-secret"
	idpSecretText = "bench-idp-secret"
)

// Harness is one running set of bench processes.
type Harness struct {
	Bin string // where the binaries are
	Dir string // the run's working directory (certificates, logs)
	// ProfileDir, when set, runs mcp-proxy with profiles (cmd/profproxy)
	// written there when the harness closes.
	ProfileDir string
	// CPUWindows, with ProfileDir, profiles each Go hop's CPU over each
	// measured window of the cpu part instead of over its whole life (Go
	// runs one CPU profile at a time): see Options.CPUWindows.
	CPUWindows bool
	// LoadSet, when set, makes Start run `make load`'s set instead of the
	// bench's (see startLoad).
	LoadSet *LoadSetup
	// Traced starts the traced proxies (see startTracedProxies) for the
	// tracing targets.
	Traced bool

	ca     *testca.CA
	hosts  *hostmap.Map
	tr     *http.Transport // reaches every bench host, as the in-process actors do
	inproc []*http.Server
	// inprocClose stops what else runs in this process (a balancer).
	inprocClose []func()
	procs       map[string]*exec.Cmd
	done        map[*exec.Cmd]chan struct{} // closed when the process has exited
	addrs       map[string]string           // host → 127.0.0.1:port
	debugAddrs  map[string]string           // a Go hop's key → its net/http/pprof listener
	args        map[string][]string         // key → the binary and arguments it was started with
	traced      []*tracedProxy

	// The mock authorization servers, in this process (make load's).
	as, idp *mockas.Server

	adminAddr string
	// DirectToken is the upstream token the direct and bare hop targets
	// send; ProxyTokens are the downstream tokens mcp-proxy issued to the
	// MCP clients, by route host.
	DirectToken string
	ProxyTokens map[string]string
	// Peers are the peers that run (Caddy, nginx: those installed).
	Peers []string
}

// Start runs the doubles in this process, the upstreams, the bare hop and
// mcp-proxy as processes of their own, and authorizes one MCP client on
// each of mcp-proxy's routes, so that the proxy's warm path is what the
// load meets.
func (h *Harness) Start(ctx context.Context) (err error) {
	h.procs, h.addrs, h.ProxyTokens = map[string]*exec.Cmd{}, map[string]string{}, map[string]string{}
	h.done, h.args, h.debugAddrs = map[*exec.Cmd]chan struct{}{}, map[string][]string{}, map[string]string{}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.ca, err = testca.New(); err != nil {
		return err
	}
	if err := os.WriteFile(h.path("ca.pem"), h.ca.CertPEM(), 0o644); err != nil {
		return err
	}
	h.hosts = hostmap.New()
	h.tr = h.NewTransport()
	if h.LoadSet != nil {
		return h.startLoad()
	}

	// The doubles: mockas as the remote authorization server and as the
	// identity provider, and the MCP clients' metadata documents.
	quiet := slog.New(slog.DiscardHandler)
	as, err := mockas.New(mockas.Config{
		Issuer: "https://" + ASHost, Logger: quiet, DisableCIMD: true,
		Clients: []mockas.Client{
			{ID: proxyClient, Name: "mcp-proxy (bench)", RedirectURIs: upstreamCallbacks(append(allProxyHosts(), TraceHosts...))},
			{ID: directClient, Secret: directSecret, Name: "bench direct", RedirectURIs: []string{"https://" + ClientHost + "/unused"}},
		},
	})
	if err != nil {
		return err
	}
	idpConfig := idp.Config(IdPHost, idpSecretText, append(allProxyHosts(), TraceHosts...)...)
	idpConfig.Logger = quiet
	idpServer, err := mockas.New(idpConfig)
	if err != nil {
		return err
	}
	for host, hd := range map[string]http.Handler{ASHost: as, IdPHost: idpServer, ClientHost: clientmeta.Handler(ClientHost, "")} {
		if err := h.serveInProcess(host, hd); err != nil {
			return err
		}
	}

	// The processes.
	for _, u := range []struct{ host, mode string }{{SDKHost, "sdk"}, {CannedHost, "canned"}, {StreamsHost, "streams"}} {
		if err := h.spawn(u.host, "benchupstream", []string{u.host}, "-mode", u.mode); err != nil {
			return err
		}
	}
	if h.DirectToken, err = h.clientCredentials(ctx); err != nil {
		return fmt.Errorf("bench: the direct token: %w", err)
	}
	if err := os.WriteFile(h.path("bearer"), []byte(h.DirectToken), 0o600); err != nil {
		return err
	}
	if err := h.startHops(); err != nil {
		return err
	}
	if h.Peers, err = h.startPeers(); err != nil {
		return err
	}
	if err := h.startProxy(); err != nil {
		return err
	}
	if h.Traced {
		if err := h.startTracedProxies(); err != nil {
			return err
		}
	}
	return h.authorizeAll(ctx)
}

// authorizeAll authorizes an MCP client on each route of every mcp-proxy
// that runs.
func (h *Harness) authorizeAll(ctx context.Context) (err error) {
	for _, host := range h.RouteHosts() {
		if h.ProxyTokens[host], err = h.authorize(ctx, host); err != nil {
			return err
		}
	}
	return nil
}

// upstreamCallbacks are the upstream callback URLs of mcp-proxy's routes.
func upstreamCallbacks(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, "https://"+h+"/.mcp-proxy/upstream/callback")
	}
	return out
}

// startHops starts the bare hop, the pooled hop (the bare hop with a
// buffer pool) and the pooled hop forwarding over HTTP/1.1 only, each with
// a route to every upstream.
func (h *Harness) startHops() error {
	for _, hop := range []struct {
		key    string
		routes [3]string // to the SDK server, the canned answer, the streams upstream
		args   []string
	}{
		{BareHost, [3]string{BareHost, BareCannedHost, BareStreamsHost}, nil},
		{PooledHost, [3]string{PooledHost, PooledCannedHost, PooledStreamsHost}, []string{"-pool"}},
		{PooledH1Host, [3]string{PooledH1Host, PooledH1CannedHost, PooledH1StreamsHost}, []string{"-pool", "-upstream-h1"}},
	} {
		debug, err := freeAddr()
		if err != nil {
			return err
		}
		args := append([]string{"-ca-file", h.path("ca.pem"), "-bearer-file", h.path("bearer"), "-debug-listen", debug}, hop.args...)
		for i, up := range []string{SDKHost, CannedHost, StreamsHost} {
			args = append(args, "-route", hop.routes[i]+"=https://"+up, "-resolve", up+":443="+h.addrs[up])
		}
		if err := h.spawn(hop.key, "barehop", hop.routes[:], args...); err != nil {
			return err
		}
		h.debugAddrs[hop.key] = debug
		for _, r := range hop.routes[1:] {
			h.addrs[r], h.procs[r] = h.addrs[hop.key], h.procs[hop.key]
		}
	}
	return nil
}

func (h *Harness) path(name string) string { return filepath.Join(h.Dir, name) }

// Addr is where host listens.
func (h *Harness) Addr(host string) string { return h.addrs[host] }

// PID is the process id of the process serving host, or 0.
func (h *Harness) PID(host string) int {
	if c := h.procs[host]; c != nil && c.Process != nil {
		return c.Process.Pid
	}
	return 0
}

func (h *Harness) serveInProcess(host string, hd http.Handler) error {
	leaf, err := h.ca.Issue(host)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: hd, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}}
	go srv.ServeTLS(ln, "", "")
	h.inproc = append(h.inproc, srv)
	h.addrs[host] = ln.Addr().String()
	h.hosts.Set(host, 443, netip.MustParseAddrPort(ln.Addr().String()))
	return nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// spawn starts binary with a certificate for names and -listen on a fresh
// port, registers it under names[0], and waits until it accepts.
func (h *Harness) spawn(key, binary string, names []string, args ...string) error {
	leaf, err := h.ca.Issue(names...)
	if err != nil {
		return err
	}
	cert, keyFile := h.path(key+".crt"), h.path(key+".key")
	if err := leaf.WriteFiles(cert, keyFile); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args = append([]string{"-listen", addr, "-tls-cert", cert, "-tls-key", keyFile}, args...)
	if err := h.exec(key, binary, args...); err != nil {
		return err
	}
	h.addrs[key] = addr
	return waitListening(addr, h.procs[key], h.done[h.procs[key]])
}

func (h *Harness) exec(key, binary string, args ...string) error {
	h.args[key] = append([]string{binary}, args...)
	logf, err := os.OpenFile(h.path(key+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(binary) {
		binary = filepath.Join(h.Bin, binary)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = h.Dir, logf, logf
	ownProcess(cmd)
	if h.ProfileDir != "" {
		cmd.Env = append(os.Environ(), "BENCH_PROFILE_DIR="+h.ProfileDir)
		if h.CPUWindows {
			cmd.Env = append(cmd.Env, "BENCH_CPU_WINDOWS=1")
		}
		if key == ProxyHost {
			if h.debugAddrs[key] == "" {
				if h.debugAddrs[key], err = freeAddr(); err != nil {
					return err
				}
			}
			cmd.Env = append(cmd.Env, "BENCH_DEBUG_ADDR="+h.debugAddrs[key])
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	h.procs[key] = cmd
	done := make(chan struct{})
	h.done[cmd] = done
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	return nil
}

// waitListening waits (bounded) until addr accepts connections.
func waitListening(addr string, cmd *exec.Cmd, exited <-chan struct{}) error {
	for range 200 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("bench: %s exited: %s", cmd.Path, cmd.ProcessState)
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: nothing listens on %s after 5s", addr)
}

func (h *Harness) clientCredentials(ctx context.Context) (string, error) {
	cc := &clientcredentials.Config{ClientID: directClient, ClientSecret: directSecret,
		TokenURL: "https://" + ASHost + "/token", AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: map[string][]string{"resource": {"https://" + SDKHost + "/mcp"}}}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: h.tr}))
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// proxyConfig is mcp-proxy's configuration: storage (the YAML under
// storage:, indented) and one route per pair of from and to hosts, each
// with the proxy's pre-registered client at the remote authorization
// server. The bench's has a route per upstream and the memory store; make
// load's one route to mockmcp and the file store beside the configuration
// file, so that a restarted proxy finds its records.
func proxyConfig(admin, storage string, routes ...[2]string) string {
	return proxyConfigNamed("proxy", admin, storage, routes...)
}

// proxyConfigNamed is proxyConfig with the certificate and key in
// name.crt and name.key.
func proxyConfigNamed(name, admin, storage string, routes ...[2]string) string {
	config := `tls:
  cert_file: ` + name + `.crt
  key_file: ` + name + `.key
identity_provider:
  issuer: https://` + IdPHost + `
  client_id: ` + idp.ClientID + `
  client_secret: ` + idpSecretText + `
storage:
  ` + storage + `
admin:
  listen: ` + admin + `
routes:
`
	for _, r := range routes {
		config += `  - from: https://` + r[0] + `
    to: https://` + r[1] + `
    mcp:
      server:
        upstream_oauth2:
          client_id: ` + proxyClient + `
          endpoint:
            auth_url: https://` + ASHost + `/authorize
            token_url: https://` + ASHost + `/token
`
	}
	return config
}

// ProxyHosts are mcp-proxy's route hosts that the CPU table measures.
var ProxyHosts = []string{ProxyHost, ProxyCannedHost, ProxyPolicyHost}

// allProxyHosts are every route host of mcp-proxy: ProxyHosts and the
// streams benchmark's.
func allProxyHosts() []string { return append(slices.Clone(ProxyHosts), ProxyStreamsHost) }

// benchPolicy is the policy of ProxyPolicyHost's route (the last one): 20
// tool rules, none of which names the tool the load generator calls, so
// every request is read and checked against all of them.
func benchPolicy() string {
	var b strings.Builder
	b.WriteString("    policy:\n      allow:\n        - users: [alice]\n      tools:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "        - names: [\"admin_%02d_*\"]\n          allow:\n            - groups: [admins]\n", i)
	}
	return b.String()
}

func (h *Harness) startProxy() error {
	if _, err := h.writeProxyCert(0); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if h.adminAddr, err = freeAddr(); err != nil {
		return err
	}
	config := proxyConfig(h.adminAddr, "type: memory", [2]string{ProxyHost, SDKHost}, [2]string{ProxyCannedHost, CannedHost},
		[2]string{ProxyStreamsHost, StreamsHost}, [2]string{ProxyPolicyHost, CannedHost}) + benchPolicy()
	if h.LoadSet != nil {
		config = proxyConfig(h.adminAddr, "type: file\n  path: proxy.db", [2]string{ProxyHost, SDKHost})
	}
	if err := os.WriteFile(h.path("proxy.yaml"), []byte(config), 0o600); err != nil {
		return err
	}
	args := h.proxyArgs("proxy.yaml", addr)
	binary := "mcp-proxy"
	if h.ProfileDir != "" {
		binary = "profproxy"
	}
	if err := h.exec(ProxyHost, binary, args...); err != nil {
		return err
	}
	if err := waitListening(addr, h.procs[ProxyHost], h.done[h.procs[ProxyHost]]); err != nil {
		return err
	}
	ap := netip.MustParseAddrPort(addr)
	for _, host := range allProxyHosts() {
		h.addrs[host], h.procs[host] = addr, h.procs[ProxyHost]
		h.hosts.Set(host, 443, ap)
	}
	return nil
}

// proxyArgs are mcp-proxy's arguments: serve config on addr, trusting the
// run's CA and reaching the doubles on their ports.
func (h *Harness) proxyArgs(config, addr string) []string {
	args := []string{"serve", "-config", config, "-listen", addr, "-ca-file", "ca.pem",
		"-allow-private-host", ClientHost, "-log-level", "warn"}
	for _, host := range []string{ASHost, IdPHost, ClientHost, SDKHost, CannedHost, StreamsHost} {
		if h.addrs[host] != "" {
			args = append(args, "-resolve", host+":443:"+h.addrs[host])
		}
	}
	return args
}

// authorize runs alice's MCP client through the proxy's authorization on
// the route of host, once, and returns the access token it got.
func (h *Harness) authorize(ctx context.Context, host string) (string, error) {
	name := "bench-" + strings.Split(host, ".")[0]
	c, err := actors.NewMCPClient(h.tr, "alice", name, clientmeta.MetadataURL(ClientHost, name), clientmeta.RedirectURL(ClientHost, name))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx, "https://"+host+"/mcp"); err != nil {
		return "", fmt.Errorf("bench: authorizing on %s: %w\n%s", host, err, h.ProxyLog())
	}
	defer c.Close()
	return c.Token(ctx)
}

// ProxyLog is what mcp-proxy logged.
func (h *Harness) ProxyLog() string {
	b, _ := os.ReadFile(h.path(ProxyHost + ".log"))
	return string(b)
}

// TokenCache reads mcp-proxy's token cache counters (hit, miss, refresh)
// for route host from its admin listener.
func (h *Harness) TokenCache(host string) (map[string]float64, error) {
	resp, err := http.Get("http://" + h.adminOf(host) + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "mcp_proxy_token_cache_requests_total{") || !strings.Contains(line, `route="`+host+`"`) {
			continue
		}
		i := strings.Index(line, `result="`)
		j := strings.LastIndexByte(line, ' ')
		if i < 0 || j < 0 {
			continue
		}
		res, _, _ := strings.Cut(line[i+len(`result="`):], `"`)
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			return nil, err
		}
		out[res] = v
	}
	return out, sc.Err()
}

// WindowProfile is a CPU profile of a hop over one measured window: the
// loadgen asks URL (the hop's net/http/pprof profile endpoint) for it as
// the window opens and writes it to File.
type WindowProfile struct{ URL, File string }

// Load runs one loadgen process against host and returns its result;
// with prof, the hop's CPU profile over the measured window too.
func (h *Harness) Load(ctx context.Context, host, token, upstream, proto string, c int, warmup, dur time.Duration, pids map[string]int, prof *WindowProfile) (*LoadResult, error) {
	args := []string{"-url", "https://" + host + "/mcp", "-addr", h.addrs[host], "-ca-file", h.path("ca.pem"),
		"-bearer", token, "-c", strconv.Itoa(c), "-proto", proto, "-upstream", upstream,
		"-warmup", warmup.String(), "-duration", dur.String()}
	if prof != nil {
		args = append(args, "-cpu-profile-url", prof.URL, "-cpu-profile-out", prof.File)
	}
	for name, pid := range pids {
		args = append(args, "-pid", name+"="+strconv.Itoa(pid))
	}
	ctx, cancel := context.WithTimeout(ctx, warmup+dur+30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(h.Bin, "loadgen"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ownProcess(cmd)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadgen %s c=%d %s: %v: %s", host, c, proto, err, strings.TrimSpace(stderr.String()))
	}
	var res LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("loadgen printed %q: %w", stdout.String(), err)
	}
	return &res, nil
}

// Close stops every process the harness started and the in-process
// servers.
func (h *Harness) Close() error {
	var errs []error
	seen := map[*exec.Cmd]bool{}
	for _, c := range h.procs {
		if c.Process == nil || seen[c] {
			continue
		}
		seen[c] = true
		if h.ProfileDir != "" && (c == h.procs[ProxyHost] || c == h.procs[BareHost]) {
			// Interrupted, the profiled proxy and bare hop write their
			// profiles.
			c.Process.Signal(os.Interrupt)
			select {
			case <-h.done[c]:
				continue
			case <-time.After(15 * time.Second):
			}
		}
		if err := killProcess(c); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
			continue
		}
		// Returns only once every process has exited: none is left over.
		select {
		case <-h.done[c]:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("bench: %s did not exit after SIGKILL", c.Path))
		}
	}
	for _, s := range h.inproc {
		s.Close()
	}
	for _, c := range h.inprocClose {
		c()
	}
	return errors.Join(errs...)
}
