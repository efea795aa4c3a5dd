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
	"slices"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/forward"
	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
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
}

// Proxy is a running configuration.
type Proxy struct {
	cfg    *config.Config
	log    *slog.Logger
	now    func() time.Time
	routes map[string]*route // by hostname.Key
	named  []string          // the hosts the configuration names
	tlsCfg *tls.Config

	transport *http.Transport // the guarded transport, for idle connection cleanup
	backend   store.Backend
	access    *bearer.Tokens
	metrics   *metrics.Metrics
	audit     *audit.Log
	streams   forward.Streams
	stop      chan struct{}
}

// New builds a proxy for cfg. It loads the TLS certificate and opens the
// store; it does not contact any remote server.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	p := &Proxy{cfg: cfg, log: opts.Logger, now: opts.Now, routes: make(map[string]*route), stop: make(chan struct{}), metrics: metrics.New()}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s and %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	p.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if p.backend = opts.Backend; p.backend == nil {
		if p.backend, err = openBackend(context.Background(), cfg, p.now, p.log); err != nil {
			return nil, err
		}
	}
	formKey, err := sharedKey(context.Background(), p.backend, "form-signing")
	if err != nil {
		p.backend.Close()
		return nil, fmt.Errorf("storage: the form-signing key: %w", err)
	}
	if cfg.Audit.File != "" {
		if p.audit, err = audit.OpenFile(cfg.Path(cfg.Audit.File)); err != nil {
			p.backend.Close()
			return nil, fmt.Errorf("audit.file: %w", err)
		}
	}
	p.named = cfg.NamedHostNames()
	guard := &netguard.Guard{Resolver: opts.Resolver, AllowLoopback: opts.AllowLoopback, Dial: opts.Dial}
	guard.Trust(opts.TrustedHosts...)
	guard.Trust(cfg.NamedHosts()...)
	p.transport = netguard.NewTransport(guard.DialContext, netguard.TransportOptions{RootCAs: opts.RootCAs})
	var outbound http.RoundTripper = p.transport
	if opts.Transport != nil {
		outbound = opts.Transport
	}
	hot := store.NewHotCache(hotTTL, hotMax, p.now)
	hot.Stale = hotStale
	hot.OnStale = func(ns store.Namespace) { p.metrics.StoreStaleRead(string(ns)) }
	p.access = &bearer.Tokens{Records: store.Records[bearer.AccessToken]{B: p.backend, NS: bearer.NSAccess, Hot: hot}, Now: p.now}
	shared := &shared{
		outbound: outbound,
		// Metadata, token and document fetches: no redirects.
		hc:        &http.Client{Transport: outbound, CheckRedirect: netguard.NoRedirects, Timeout: 30 * time.Second},
		hot:       hot,
		formKey:   formKey,
		discovery: nil,
	}
	shared.discovery = &upstream.Discoverer{HTTP: shared.hc, Now: p.now, AllowHost: p.allowMetadataHost}
	shared.clients = &clientid.Resolver{HTTP: shared.hc, Now: p.now}
	if !p.cfg.DisableClientRegistration {
		shared.registry = &registration.Registry{B: p.backend, Now: p.now, UsedTTL: authserver.RefreshTokenTTL}
		shared.regLimit = &registration.Limiter{Now: p.now}
	}
	shared.sessions = &login.Sessions{Records: store.Records[login.Session]{B: p.backend, NS: login.NSSessions}, Now: p.now}
	shared.idp = &login.Provider{
		Issuer: cfg.IdentityProvider.Issuer, ClientID: cfg.IdentityProvider.ClientID, ClientSecret: cfg.IdentityProvider.ClientSecret,
		Scopes: cfg.IDPScopes(), GroupsClaim: cfg.IdentityProvider.GroupsClaim, HTTP: shared.hc, Now: p.now,
	}
	for i := range cfg.Routes {
		rt := p.newRoute(&cfg.Routes[i], shared)
		p.routes[cfg.Routes[i].Key()] = rt
	}
	go p.sweep()
	return p, nil
}

// allowMetadataHost vets a host that a remote document named: hosts of the
// configuration always pass; others must match allowed_metadata_domains
// when it is set. (Where the host resolves is the guard's business, at
// dial time.)
func (p *Proxy) allowMetadataHost(host string) error {
	allowed := p.cfg.AllowedMetadataDomains
	if len(allowed) == 0 || slices.Contains(p.named, hostname.Name(host)) || config.DomainAllowed(host, allowed) {
		return nil
	}
	return fmt.Errorf("its host %s is not in allowed_metadata_domains", host)
}

// Close stops background work.
func (p *Proxy) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.transport.CloseIdleConnections()
	for _, rt := range p.routes {
		rt.fwd.CloseIdleConnections()
	}
	var errs []error
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

// TLSConfig returns the server TLS configuration for the routes' hosts.
func (p *Proxy) TLSConfig() *tls.Config { return p.tlsCfg }

// Handler returns the proxy's HTTP handler.
func (p *Proxy) Handler() http.Handler { return apierror.WithRequestID(p) }

// ServeHTTP dispatches on the Host header to a route. A host that names no
// route gets an error and nothing else: no metadata or client document is
// ever rendered for a host the operator did not configure.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := p.routes[hostname.Key("https", r.Host)]
	if rt == nil {
		apierror.Write(w, r, p.log, apierror.New(apierror.CodeUnknownHost,
			"No route answers for host %q; check the from of your routes.", r.Host))
		return
	}
	rt.ServeHTTP(w, r)
}

// Serve accepts connections on ln, terminates TLS and serves until ctx is
// done, then shuts down gracefully.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		TLSConfig:         p.tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.With(event.HttpLibrary.Attr()).Handler(), slog.LevelWarn),
		// No WriteTimeout: server-sent event streams stay open as long as
		// the remote server keeps them open.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
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
