// Package proxy is the reference MCP proxy as a library: it answers for the
// hosts of its routes, authorizes MCP clients itself (it is their OAuth 2.1
// authorization server and resource server), acts as an OAuth client towards
// each remote MCP server, and forwards requests with the remote server's
// token in place of the client's.
//
// cmd/mcp-proxy wires it to flags; the conformance harness embeds it.
package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Lifetimes of what the proxy issues and keeps. Named here so the docs and
// the code say the same thing.
const (
	// SessionTTL is how long a browser stays signed in on a route host.
	SessionTTL = 8 * time.Hour
	// FlowTTL bounds a pending authorization: sign-in, consent and the
	// remote authorization server's consent must finish within it.
	FlowTTL = 10 * time.Minute
	// CodeTTL is the life of a code issued to an MCP client.
	CodeTTL = 2 * time.Minute
	// AccessTokenTTL is the life of an access token issued to an MCP client.
	AccessTokenTTL = time.Hour
	// RefreshTokenTTL is the life of a refresh token issued to an MCP
	// client; each use replaces it.
	RefreshTokenTTL = 30 * 24 * time.Hour
	// RefreshSkew is how long before its expiry an upstream token is
	// refreshed, so a request never carries a token that expires in flight.
	RefreshSkew = time.Minute
)

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
	// the configuration does not name them (the -allow-private-host flag).
	TrustedHosts []string
	// AllowLoopback lets any host resolve to loopback (for trying the
	// proxy on one machine).
	AllowLoopback bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Backend replaces the store the configuration names (tests).
	Backend store.Backend
}

// Proxy is a running configuration.
type Proxy struct {
	cfg    *config.Config
	log    *slog.Logger
	now    func() time.Time
	routes map[string]*route
	named  []string // the hosts the configuration names
	tlsCfg *tls.Config

	guard     *netguard.Guard
	hc        *http.Client // metadata, token and document fetches: no redirects
	transport *http.Transport

	discovery *upstream.Discoverer
	clients   *clientid.Resolver
	idp       *login.Provider
	csrfKey   []byte

	st          *state
	refreshes   singleflight.Group
	registering singleflight.Group
	metrics     *metrics.Metrics
	audit       *audit.Log

	stop chan struct{}

	// streams cancels the long-lived GET streams in flight, which a
	// graceful shutdown would otherwise wait out: their clients reconnect
	// (to the next process) and resume.
	streamsMu sync.Mutex
	streams   map[*http.Request]context.CancelFunc
}

// New builds a proxy for cfg. It loads the TLS certificate; it does not
// contact any remote server.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	p := &Proxy{
		cfg:     cfg,
		log:     opts.Logger,
		now:     opts.Now,
		routes:  make(map[string]*route),
		stop:    make(chan struct{}),
		metrics: metrics.New(),
	}
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
	b := opts.Backend
	if b == nil {
		if b, err = openBackend(context.Background(), cfg, p.now); err != nil {
			return nil, err
		}
	}
	p.st = &state{b: b, now: p.now}
	if cfg.Audit.File != "" {
		if p.audit, err = audit.OpenFile(cfg.Path(cfg.Audit.File)); err != nil {
			b.Close()
			return nil, fmt.Errorf("audit.file: %w", err)
		}
	}
	p.tlsCfg = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}

	p.guard = &netguard.Guard{Resolver: opts.Resolver, AllowLoopback: opts.AllowLoopback, Dial: opts.Dial}
	p.guard.Trust(opts.TrustedHosts...)
	p.transport = netguard.NewTransport(p.guard.DialContext, netguard.TransportOptions{RootCAs: opts.RootCAs})
	p.hc = &http.Client{Transport: p.transport, CheckRedirect: netguard.NoRedirects, Timeout: 30 * time.Second}

	p.discovery = &upstream.Discoverer{HTTP: p.hc, Now: p.now, AllowHost: p.allowMetadataHost}
	p.clients = &clientid.Resolver{HTTP: p.hc, Now: p.now}
	p.idp = &login.Provider{
		Issuer:       cfg.IdentityProvider.Issuer,
		ClientID:     cfg.IdentityProvider.ClientID,
		ClientSecret: cfg.IdentityProvider.ClientSecret,
		Scopes:       cfg.IDPScopes(),
		HTTP:         p.hc,
		Now:          p.now,
	}
	p.csrfKey = make([]byte, 32)
	_, _ = rand.Read(p.csrfKey)

	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		rt := newRoute(p, rc)
		p.routes[rt.host] = rt
	}
	p.named = cfg.NamedHosts()
	p.guard.Trust(p.named...)
	go p.sweep()
	return p, nil
}

// allowMetadataHost vets a host that a remote document named: hosts of the
// configuration always pass; others must match allowed_metadata_domains
// when it is set. (Where the host resolves is the guard's business, at
// dial time.)
func (p *Proxy) allowMetadataHost(host string) error {
	allowed := p.cfg.AllowedMetadataDomains
	if len(allowed) == 0 || slices.Contains(p.named, strings.ToLower(host)) || config.DomainAllowed(host, allowed) {
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
	var errs []error
	if p.audit != nil {
		errs = append(errs, p.audit.Close())
	}
	errs = append(errs, p.st.b.Close())
	return errors.Join(errs...)
}

// Metrics returns the proxy's metrics.
func (p *Proxy) Metrics() *metrics.Metrics { return p.metrics }

// Ready reports whether the proxy can serve: its store answers.
func (p *Proxy) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := p.st.b.Get(ctx, nsSessions, "readiness-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("the token store does not answer: %w", err)
	}
	return nil
}

// storageFailure answers a request whose store operation failed.
func (p *Proxy) storageFailure(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	rt.writeError(w, r, storageError(err))
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
			if sw, ok := p.st.b.(store.Sweeper); ok {
				if _, err := sw.Sweep(context.Background()); err != nil {
					p.log.Warn("sweeping expired records failed", slog.String("event", "store_sweep_failed"), slog.Any("error", err))
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
	rt := p.routes[hostKey(r.Host)]
	if rt == nil {
		apierror.Write(w, r, p.log, apierror.New(apierror.CodeUnknownHost, http.StatusNotFound,
			"No route answers for host %q; check the from of your routes.", r.Host))
		return
	}
	rt.ServeHTTP(w, r)
}

// hostKey lower-cases a Host header and drops the default https port.
func hostKey(h string) string {
	h = strings.ToLower(h)
	return strings.TrimSuffix(h, ":443")
}

// Serve accepts connections on ln, terminates TLS and serves until ctx is
// done, then shuts down gracefully.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		TLSConfig:         p.tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		// No WriteTimeout: server-sent event streams stay open as long as
		// the remote server keeps them open.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		p.streamsMu.Lock()
		for _, cancel := range p.streams {
			cancel()
		}
		p.streamsMu.Unlock()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = srv.Close()
		}
		return err
	}
}

// trackStream registers a long-lived GET stream for cancellation at
// shutdown; the returned func unregisters it.
func (p *Proxy) trackStream(r *http.Request, cancel context.CancelFunc) func() {
	p.streamsMu.Lock()
	if p.streams == nil {
		p.streams = make(map[*http.Request]context.CancelFunc)
	}
	p.streams[r] = cancel
	p.streamsMu.Unlock()
	return func() {
		p.streamsMu.Lock()
		delete(p.streams, r)
		p.streamsMu.Unlock()
		cancel()
	}
}

// random returns n random bytes, base64url-encoded.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken binds a form to a session and a request.
func (p *Proxy) csrfToken(sessionID, requestID string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(sessionID + "\x00" + requestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Proxy) checkCSRF(sessionID, requestID, got string) bool {
	return hmac.Equal([]byte(p.csrfToken(sessionID, requestID)), []byte(got))
}

// newReverseProxy forwards to the route's remote server.
func (p *Proxy) newReverseProxy(rt *route) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        rt.rewrite,
		Transport:      headerTimeout{base: p.transport, d: rt.cfg.Server().Timeout()},
		ModifyResponse: rt.modifyResponse,
		ErrorHandler:   rt.forwardError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}
