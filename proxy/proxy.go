// Package proxy is the reference MCP proxy as a library: it answers for the
// hosts of its routes, authorizes MCP clients itself (it is their OAuth 2.1
// authorization server and resource server), acts as an OAuth client towards
// each remote MCP server, and forwards requests with the remote server's
// token in place of the client's.
//
// This package wires the parts, each a package of its own. Along the request
// path, in order: bearer (the MCP client's token; it starts the request
// scope, request), binding (whose upstream token), tokens (the upstream
// token source: cache, refresh, revocation), forward (the remote server).
// Beside it: authserver (the proxy's own OAuth endpoints and pages, with
// login for the user's sign-in) and connect, the sole owner of the upstream
// leg (discovery, registration, authorization, its callback, the code
// exchange, client credentials), which credentials (the route's own client
// secrets) and upstream (the OAuth wire) serve. Underneath: config, store,
// apierror (the error catalog), event (the log catalog), metrics, audit,
// netguard (the SSRF guard), redact, pages, clientid and registration (the
// MCP clients' identities), cli.
//
// cmd/mcp-proxy wires it to flags; the conformance harness embeds it.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/acme"
	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/forward"
	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
)

// hotTTL is how long a replica reuses a record of the request path (an
// access token's grant, an upstream token) that it decoded, before reading
// the store again. Changes made through this replica apply at once;
// changes made through another replica (a disconnect, a refresh) are seen
// within hotTTL.
const hotTTL = 2 * time.Second

// hotStale is how long after a replica read a record of the request path
// it still serves it from memory while the store cannot be reached (a
// Redis outage or failover), as long as the record is valid by its own
// expiry. What another replica changed meanwhile (a disconnect) is missed
// only while the store is away; a record the store no longer has is never
// served. Longer than any outage a Redis Sentinel failover takes, short
// enough that a replica cut off from Redis for long stops serving.
const hotStale = 15 * time.Minute

// hotMax bounds the decoded records a replica keeps; past it the least
// recently used go first.
const hotMax = 100_000

// randRead fills b with random bytes.
var randRead = rand.Read

// Options are the settings that are not part of the configuration file:
// how the proxy reaches the network and what it trusts. Zero values are the
// production defaults.
type Options struct {
	// Logger receives JSON logs. Nil means slog.Default().
	Logger *slog.Logger
	// Resolver resolves outbound host names. Nil means the system's DNS.
	Resolver netguard.Resolver
	// Dial makes outbound TCP connections to checked addresses. Nil means
	// a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs are the roots trusted for outbound TLS. Nil means the system
	// roots.
	RootCAs *x509.CertPool
	// TrustedHosts may resolve to private or loopback addresses even though
	// the configuration does not name them (the -allow-private-host flag):
	// host[:port], trusted on that port only (443 when none is given).
	TrustedHosts []string
	// AllowLoopback lets any host resolve to loopback (for trying the
	// proxy on one machine).
	AllowLoopback bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Backend replaces the store the configuration names (tests).
	Backend store.Backend
	// Transport replaces every outbound connection, forwarding and OAuth
	// alike (tests). Nil: the SSRF-guarded transport.
	Transport http.RoundTripper
	// ACMERenewCheckInterval is how often tls.acme's certificates are
	// checked for renewal. Zero means every 10 minutes; tests with
	// certificates that live a minute shorten it.
	ACMERenewCheckInterval time.Duration
	// Version is the proxy's version, the service.version of its spans.
	Version string
	// SpanExporter replaces the OTLP exporter of the configuration's
	// tracing block (tests). Tracing stays off unless the configuration
	// turns it on.
	SpanExporter sdktrace.SpanExporter
}

// Proxy is a running configuration. What outlives a reload (the store,
// the downstream tokens, metrics, the audit log, open streams) is the
// Proxy's own; what a configuration builds (routes, their certificate,
// the outbound transport) is a generation, swapped whole by Reload.
type Proxy struct {
	log  *slog.Logger
	now  func() time.Time
	opts Options
	gen  atomic.Pointer[generation]
	// reloading serializes reloads.
	reloading sync.Mutex

	backend store.Backend
	hot     *store.HotCache
	access  *bearer.Tokens
	formKey []byte
	metrics *metrics.Metrics
	audit   *audit.Log
	streams forward.Streams
	stop    chan struct{}
	// tracer is nil when tracing is off; the configuration it came from
	// is only applied by a restart.
	tracer *tracing.Tracer

	// acme obtains and renews the certificates under tls.acme (nil
	// without it); it outlives reloads, so there is one renewal loop.
	acme *acme.Manager
	// challengeLn is tls.acme.http_listen's listener (SetChallengeListener).
	challengeLn net.Listener
}

// New builds a proxy for cfg. It loads the TLS certificate and opens the
// store; it does not contact any remote server.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	p := &Proxy{log: opts.Logger, now: opts.Now, opts: opts, stop: make(chan struct{}), metrics: metrics.New()}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	g, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	if p.backend = opts.Backend; p.backend == nil {
		if p.backend, err = openBackend(context.Background(), cfg, p.now, p.log); err != nil {
			return nil, err
		}
	}
	if p.formKey, err = sharedKey(context.Background(), p.backend, "form-signing"); err != nil {
		p.backend.Close()
		return nil, fmt.Errorf("storage: the form-signing key: %w", err)
	}
	if cfg.Audit.File != "" {
		if p.audit, err = audit.OpenFile(cfg.Path(cfg.Audit.File)); err != nil {
			p.backend.Close()
			return nil, fmt.Errorf("audit.file: %w", err)
		}
	}
	if p.tracer, err = p.newTracer(cfg); err != nil {
		if p.audit != nil {
			p.audit.Close()
		}
		p.backend.Close()
		return nil, err
	}
	if cfg.TLS.ACME != nil {
		p.acme = acme.NewManager(acme.Options{Logger: p.log, Backend: p.backend, RootCAs: opts.RootCAs,
			RenewCheckInterval: opts.ACMERenewCheckInterval, Now: p.now})
		if err := p.acme.Apply(cfg); err != nil {
			p.acme.Stop()
			if p.tracer != nil {
				p.tracer.Shutdown(context.Background())
			}
			if p.audit != nil {
				p.audit.Close()
			}
			p.backend.Close()
			return nil, err
		}
	}
	p.hot = store.NewHotCache(hotTTL, hotMax, p.now)
	p.hot.Stale = hotStale
	p.hot.OnStale = func(ns store.Namespace) { p.metrics.StoreStaleRead(string(ns)) }
	p.access = &bearer.Tokens{Records: store.Records[bearer.AccessToken]{B: p.backend, NS: bearer.NSAccess, Hot: p.hot}, Now: p.now}
	p.route(g)
	p.gen.Store(g)
	go p.sweep()
	return p, nil
}

// current is the generation serving now.
func (p *Proxy) current() *generation { return p.gen.Load() }

// Close stops background work.
func (p *Proxy) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.current().closeIdle()
	if p.acme != nil {
		p.acme.Stop()
	}
	var errs []error
	if p.tracer != nil {
		// The spans not sent yet go now, bounded: a receiver that does not
		// answer must not hold up the shutdown.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, p.tracer.Shutdown(ctx))
		cancel()
	}
	if p.audit != nil {
		errs = append(errs, p.audit.Close())
	}
	errs = append(errs, p.backend.Close())
	return errors.Join(errs...)
}

// Metrics returns the proxy's metrics.
func (p *Proxy) Metrics() *metrics.Metrics { return p.metrics }

// Ready reports whether the proxy can serve: its store answers.
func (p *Proxy) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := p.backend.Get(ctx, string(login.NSSessions), "readiness-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("the token store does not answer: %w", err)
	}
	return nil
}

// sweep frees expired state once a minute.
func (p *Proxy) sweep() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if sw, ok := p.backend.(store.Sweeper); ok {
				if _, err := sw.Sweep(context.Background()); err != nil {
					p.log.Warn("sweeping expired records failed", event.StoreSweepFailed.Attr(), slog.Any("error", err))
				}
			}
		}
	}
}

// TLSConfig returns the server TLS configuration for the routes' hosts:
// the certificate of the generation serving when a connection starts, or
// under tls.acme the one ACME obtained for the host (and, while the CA
// validates, the tls-alpn-01 challenge certificate: acme-tls/1 is offered
// for that).
func (p *Proxy) TLSConfig() *tls.Config {
	if p.acme != nil {
		return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1", acmez.ACMETLS1Protocol},
			GetCertificate: p.acme.GetCertificate}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.current().cert, nil }}
}

// SetChallengeListener hands the proxy the listener of
// tls.acme.http_listen, before Serve: Serve answers http-01 challenges on
// it and redirects every other request to https.
func (p *Proxy) SetChallengeListener(ln net.Listener) { p.challengeLn = ln }

// Handler returns the proxy's HTTP handler.
func (p *Proxy) Handler() http.Handler { return apierror.WithRequestID(p) }

// ServeHTTP dispatches on the Host header to a route. A host that names no
// route gets an error and nothing else: no metadata or client document is
// ever rendered for a host the operator did not configure. With tracing
// on, the request is served inside its span.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := p.current().routes[hostname.Key("https", r.Host)]
	if p.tracer != nil {
		var route string
		if rt != nil {
			route = rt.cfg.Key()
		}
		p.tracer.Serve(w, r, route, apierror.RequestID(r.Context()), func(w http.ResponseWriter, r *http.Request) { p.serve(rt, w, r) })
		return
	}
	p.serve(rt, w, r)
}

func (p *Proxy) serve(rt *route, w http.ResponseWriter, r *http.Request) {
	if rt == nil {
		apierror.Write(w, r, p.log, apierror.New(apierror.CodeUnknownHost,
			"No route answers for host %q; check the from of your routes.", r.Host))
		return
	}
	rt.ServeHTTP(w, r)
}

// newTracer starts the tracer of cfg's tracing settings; nil when tracing
// is off. Its exporter dials as the proxy does everywhere: through the
// SSRF guard, which trusts the receiver as a host the configuration
// names.
func (p *Proxy) newTracer(cfg *config.Config) (*tracing.Tracer, error) {
	s := cfg.TracingSettings()
	if s == nil {
		return nil, nil
	}
	o := p.opts
	guard := &netguard.Guard{Resolver: o.Resolver, AllowLoopback: o.AllowLoopback, Dial: o.Dial}
	guard.Trust(o.TrustedHosts...)
	guard.Trust(cfg.NamedHosts()...)
	return tracing.New(context.Background(), s, tracing.Options{Version: o.Version, Log: p.log, Dial: guard.DialContext,
		RootCAs: o.RootCAs, Exporter: o.SpanExporter})
}

// Serve accepts connections on ln, terminates TLS and serves until ctx is
// done, then shuts down gracefully.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		TLSConfig:         p.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.With(event.HttpLibrary.Attr()).Handler(), slog.LevelWarn),
		// No WriteTimeout: server-sent event streams stay open as long as
		// the remote server keeps them open.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if p.acme != nil {
		var httpAddr net.Addr
		if p.challengeLn != nil {
			httpAddr = p.challengeLn.Addr()
			hs := &http.Server{Handler: p.acme.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second,
				ErrorLog: srv.ErrorLog}
			go hs.Serve(p.challengeLn)
			defer hs.Close()
		}
		p.acme.Start(ln.Addr(), httpAddr)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		p.streams.CancelAll()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = srv.Close()
		}
		return err
	}
}
