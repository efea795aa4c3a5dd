// Package cli is the mcp-proxy command line: serve, validate, discover,
// audit verify, policy check and version.
// cmd/mcp-proxy calls Run with the process's arguments; the harness calls it
// in-process with its own listener and network, so scenarios run exactly
// the commands the docs show.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// Env is what a command runs with. The zero value plus Stdout and Stderr is
// the process's own environment.
type Env struct {
	Stdout, Stderr io.Writer
	// Dir is the working directory for relative paths; "" means the
	// process's.
	Dir string
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Listen opens the serving listener; nil means net.Listen.
	Listen func(network, addr string) (net.Listener, error)
	// Network is the base of the proxy's outbound options (resolver,
	// dialer); flags add to it.
	Network proxy.Options
	// Ready, when set, is called with the proxy once it serves.
	Ready func(*proxy.Proxy, net.Addr)
	// AdminReady, when set, is called with the admin listener's address
	// once it serves.
	AdminReady func(net.Addr)
}

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the command ran and found a problem
	ExitUsage   = 2 // the command line was wrong
	usageHeader = `mcp-proxy puts OAuth in front of remote MCP servers for your users' MCP clients.

Usage:
  mcp-proxy serve    -config FILE [flags]   serve the routes of FILE
  mcp-proxy validate -config FILE           check FILE and print every problem
  mcp-proxy discover [flags] URL            walk discovery for a remote MCP server and print a verdict
  mcp-proxy audit verify FILE               check the hash chain of an audit log
  mcp-proxy policy check -config FILE ...   explain a route's access policy decision for a user
  mcp-proxy version                         print the version

Run "mcp-proxy COMMAND -h" for the flags of a command.
`
)

// Run runs the command in args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usageHeader)
		return ExitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env)
	case "validate":
		return validate(args[1:], env)
	case "discover":
		return discover(ctx, args[1:], env)
	case "audit":
		return auditCommand(args[1:], env)
	case "policy":
		return policyCommand(args[1:], env)
	case "version", "-version", "--version":
		fmt.Fprintln(env.Stdout, Version())
		return ExitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, usageHeader)
		return ExitOK
	default:
		fmt.Fprintf(env.Stderr, "mcp-proxy: unknown command %q\n\n%s", args[0], usageHeader)
		return ExitUsage
	}
}

// Version returns the module version and VCS revision the binary was built
// from.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "mcp-proxy (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	out := "mcp-proxy " + v
	if rev != "" {
		out += " " + rev + dirty
	}
	return out + " " + bi.GoVersion
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newFlagSet(name, summary string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mcp-proxy %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func (e Env) path(p string) string {
	if e.Dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Dir, p)
}

func validate(args []string, env Env) int {
	fs := newFlagSet("validate", "Reads the configuration exactly as serve does and prints every problem, each as\nfile:line:column: field.path: what is wrong. Exits 1 when there is any.", env)
	cfgPath := fs.String("config", "config.yaml", "the configuration `file`")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if _, err := config.LoadFile(env.Dir, *cfgPath, env.LookupEnv); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitFailed
	}
	fmt.Fprintf(env.Stdout, "%s: configuration is valid\n", *cfgPath)
	return ExitOK
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

func serve(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("serve", "Serves the routes of the configuration file over HTTPS until interrupted.", env)
	cfgPath := fs.String("config", "config.yaml", "the configuration `file`")
	listen := fs.String("listen", "", "serve on this `address` instead of the configuration's listen (default :443)")
	caFile := fs.String("ca-file", "", "also trust the CA certificates in this PEM `file` for outbound HTTPS\n(remote servers, authorization servers, the identity provider, MCP clients' metadata)")
	var private stringList
	fs.Var(&private, "allow-private-host", "let this `host[:port]` resolve to a private or loopback address although the\nconfiguration does not name it, on that port only (default 443; repeatable); hosts in the configuration\nare always allowed, on the ports their URLs name")
	var resolve stringList
	fs.Var(&resolve, "resolve", "connect to `host:port:address` instead of what DNS says for host:port, like curl's\n--resolve (repeatable); the SSRF rules still apply to the address")
	allowLoopback := fs.Bool("allow-loopback", false, "let any host resolve to a loopback address (for trying the proxy on one machine)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	adminListen := fs.String("admin-listen", "", "serve /metrics, /healthz and /readyz on this `address` instead of the configuration's\nadmin.listen (default 127.0.0.1:9464; off turns it off)")
	watch := fs.Duration("watch-interval", DefaultWatchInterval, "how often to look for a changed configuration file or certificate and reload it\n(0: reload only on SIGHUP)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy serve: -log-level %q: use debug, info, warn or error\n", *logLevel)
		return ExitUsage
	}
	log := slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.LoadFile(env.Dir, *cfgPath, env.LookupEnv)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitFailed
	}
	opts := env.Network
	opts.Logger = log
	opts.Version = Version()
	opts.TrustedHosts = append(append([]string(nil), opts.TrustedHosts...), private...)
	opts.AllowLoopback = opts.AllowLoopback || *allowLoopback
	if len(resolve) > 0 {
		sr := &netguard.StaticResolver{Fallback: opts.Resolver}
		for _, r := range resolve {
			if err := sr.ParseResolve(r); err != nil {
				fmt.Fprintf(env.Stderr, "mcp-proxy serve: -resolve %v\n", err)
				return ExitUsage
			}
		}
		opts.Resolver = sr
	}
	if *caFile != "" {
		if opts.RootCAs, err = withCAFile(opts.RootCAs, env.path(*caFile)); err != nil {
			fmt.Fprintf(env.Stderr, "mcp-proxy serve: -ca-file %v\n", err)
			return ExitFailed
		}
	}
	listenFn := env.Listen
	if listenFn == nil {
		listenFn = net.Listen
	}
	p, err := proxy.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy serve: %v\n", err)
		return ExitFailed
	}
	defer p.Close()

	addr := cfg.ListenAddr()
	if *listen != "" {
		addr = *listen
	}
	ln, err := listenFn("tcp", addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy serve: listen on %s: %v\n", addr, err)
		return ExitFailed
	}
	if a := cfg.TLS.ACME; a != nil && a.HTTPListen != "" {
		hln, err := listenFn("tcp", a.HTTPListen)
		if err != nil {
			ln.Close()
			fmt.Fprintf(env.Stderr, "mcp-proxy serve: tls.acme.http_listen on %s: %v\n", a.HTTPListen, err)
			return ExitFailed
		}
		p.SetChallengeListener(hln)
	}
	adminAddr := cfg.AdminListen()
	if *adminListen != "" {
		adminAddr = *adminListen
		if adminAddr == "off" {
			adminAddr = ""
		}
	}
	if adminAddr != "" {
		stop, err := serveAdmin(ctx, p, listenFn, adminAddr, log, env)
		if err != nil {
			ln.Close()
			fmt.Fprintf(env.Stderr, "mcp-proxy serve: admin listener on %s: %v (set admin.listen, or -admin-listen off)\n", adminAddr, err)
			return ExitFailed
		}
		defer stop()
	}
	routes := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, r.From+" -> "+r.To)
	}
	log.Info("serving", event.ProxyStarted.Attr(), slog.String("listen", ln.Addr().String()),
		slog.Any("routes", routes), slog.String("version", Version()))
	rl := &reloader{p: p, env: env, cfgPath: *cfgPath, log: log, interval: *watch}
	rctx, stopReloads := context.WithCancel(ctx)
	defer stopReloads()
	go rl.run(rctx)
	if env.Ready != nil {
		env.Ready(p, ln.Addr())
	}
	if err := p.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("serving stopped", event.ProxyFailed.Attr(), slog.Any("error", err))
		return ExitFailed
	}
	log.Info("stopped", event.ProxyStopped.Attr())
	return ExitOK
}

// withCAFile returns base (the system roots when nil) with the PEM
// certificates of file added.
func withCAFile(base *x509.CertPool, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := base
	if pool == nil {
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
	} else {
		pool = pool.Clone()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// serveAdmin serves /metrics, /healthz and /readyz on addr until the
// returned stop is called.
func serveAdmin(ctx context.Context, p *proxy.Proxy, listen func(network, addr string) (net.Listener, error), addr string, log *slog.Logger, env Env) (stop func(), err error) {
	aln, err := listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.Metrics().BuildInfo(Version())
	admin := &http.Server{
		Handler:           metrics.AdminHandler(p.Metrics(), func() error { return p.Ready(ctx) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go admin.Serve(aln)
	log.Info("admin listener", event.AdminStarted.Attr(), slog.String("listen", aln.Addr().String()))
	if env.AdminReady != nil {
		env.AdminReady(aln.Addr())
	}
	return func() { admin.Close() }, nil
}
