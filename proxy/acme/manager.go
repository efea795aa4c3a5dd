package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// Options configure a Manager. Zero values are the production defaults.
type Options struct {
	// Logger receives the certificate events and certmagic's warnings.
	// Nil means slog.Default().
	Logger *slog.Logger
	// Backend is the proxy's store, where certificates, keys, the ACME
	// account and locks are kept.
	Backend store.Backend
	// RootCAs are trusted for the ACME server's HTTPS when tls.acme.ca_file
	// is not set (serve's -ca-file). Nil means the system roots.
	RootCAs *x509.CertPool
	// RenewCheckInterval is how often the certificates are checked for
	// renewal. Zero means certmagic's default, 10 minutes; tests shorten
	// it for certificates that live a minute.
	RenewCheckInterval time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// missingEvery is how often certificate_unavailable is logged per host
// while handshakes find no certificate: each handshake fails, but one line
// a minute says why.
const missingEvery = time.Minute

// Manager obtains and renews the routes' certificates. One Manager, with
// one certmagic cache and so one renewal loop, lives as long as the proxy;
// each configuration (a reload) gives it new settings and hosts with Apply,
// and the certificates it already has stay in the cache and the store.
type Manager struct {
	log     *slog.Logger
	opts    Options
	storage *Storage
	cache   *certmagic.Cache

	mu       sync.Mutex
	magic    *certmagic.Config // the current configuration's
	issuer   *certmagic.ACMEIssuer
	settings *config.ACME
	roots    *x509.CertPool     // trusted for the ACME server
	names    []string           // the hosts managed now
	tlsAddr  net.Addr           // the proxy's listener, once Start ran
	httpAddr net.Addr           // the http-01 listener, when there is one
	stop     context.CancelFunc // ends the current configuration's obtains
	missing  map[string]time.Time
}

// NewManager starts the certificate cache and its renewal loop. Nothing
// is obtained until Start.
func NewManager(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Manager{log: o.Logger, opts: o, storage: NewStorage(o.Backend, o.Now), missing: map[string]time.Time{}}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.magic == nil {
				return nil, errors.New("acme: no configuration yet")
			}
			return m.magic, nil
		},
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zapLogger(o.Logger),
	})
	return m
}

// Apply makes cfg's tls.acme settings and route hosts current: a new
// certmagic configuration on the same cache, so certificates already
// obtained stay. Once started, hosts cfg adds are obtained in the
// background, hosts it drops are no longer renewed, and attempts that are
// waiting to retry start again at once. An unreadable ca_file is an error,
// and nothing changes.
func (m *Manager) Apply(cfg *config.Config) error {
	roots := m.opts.RootCAs
	if f := cfg.TLS.ACME.CAFile; f != "" {
		pemBytes, err := os.ReadFile(cfg.Path(f))
		if err != nil {
			return fmt.Errorf("tls.acme.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("tls.acme.ca_file: %s holds no PEM certificate", f)
		}
	}
	var names []string
	for _, r := range cfg.Routes {
		if u := r.FromURL(); u != nil && !slices.Contains(names, u.Hostname()) {
			names = append(names, u.Hostname())
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings, m.roots = cfg.TLS.ACME, roots
	old := m.names
	m.names = names
	if m.tlsAddr == nil {
		return nil
	}
	m.manage(old)
	return nil
}

// Start begins obtaining certificates, now that the proxy listens on
// tlsAddr (tls-alpn-01 is answered there) and, when tls.acme.http_listen
// is set, on httpAddr (http-01). It returns at once: certificates are
// obtained in the background, and retried with backoff when the CA
// cannot be reached.
func (m *Manager) Start(tlsAddr, httpAddr net.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tlsAddr, m.httpAddr = tlsAddr, httpAddr
	m.manage(nil)
}

// manage builds the certmagic configuration of the current settings and
// manages the current names; old are the names managed before. The caller
// holds m.mu.
func (m *Manager) manage(old []string) {
	if m.stop != nil {
		m.stop()
	}
	ctx, stop := context.WithCancel(context.Background())
	m.stop = stop
	var magic *certmagic.Config
	magic = certmagic.New(m.cache, certmagic.Config{
		Storage: m.storage,
		Logger:  zapLogger(m.log),
		OnEvent: func(ctx context.Context, name string, data map[string]any) error {
			return m.onEvent(ctx, magic, name, data)
		},
	})
	m.magic = magic
	m.issuer = certmagic.NewACMEIssuer(m.magic, m.issuerTemplate())
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	var gone []certmagic.SubjectIssuer
	for _, n := range old {
		if !slices.Contains(m.names, n) {
			gone = append(gone, certmagic.SubjectIssuer{Subject: n})
		}
	}
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
	// ManageAsync only fails for a name certmagic cannot manage at all
	// (validation made sure the routes' hosts are names); obtaining
	// happens in the background and reports through onEvent.
	if err := m.magic.ManageAsync(ctx, m.names); err != nil {
		m.log.Error("could not manage the routes' certificates", event.CertificateFailed.Attr(),
			slog.Any("host", m.names), slog.Bool("renewal", false), slog.String("error", err.Error()))
	}
}

// issuerTemplate is certmagic's ACME issuer for the current settings: it
// answers tls-alpn-01 on the proxy's listener and http-01 on the http-01
// listener. certmagic tries to bind a challenge listener of its own at
// ListenHost and the port; naming the proxy's own listeners makes that
// bind fail as "in use", so certmagic leaves the answering to them.
func (m *Manager) issuerTemplate() certmagic.ACMEIssuer {
	a := m.settings
	host, port := splitAddr(m.tlsAddr)
	iss := certmagic.ACMEIssuer{
		CA:                      a.Directory(),
		Email:                   a.Email,
		Agreed:                  true,
		TrustedRoots:            m.roots,
		ListenHost:              host,
		AltTLSALPNPort:          port,
		DisableTLSALPNChallenge: !a.Answers(config.ChallengeTLSALPN),
		DisableHTTPChallenge:    !a.Answers(config.ChallengeHTTP) || m.httpAddr == nil,
		Logger:                  zapLogger(m.log),
	}
	if m.httpAddr != nil {
		_, iss.AltHTTPPort = splitAddr(m.httpAddr)
	}
	return iss
}

func splitAddr(a net.Addr) (string, int) {
	if a == nil {
		return "", 0
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// GetCertificate is the proxy's tls.Config.GetCertificate under ACME: the
// certificate certmagic holds for the host, or the tls-alpn-01 challenge
// certificate while the CA validates. A handshake for a host without a
// certificate yet fails, and says so in the log once a minute per host.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.Lock()
	magic := m.magic
	m.mu.Unlock()
	if magic == nil {
		return nil, errors.New("acme: the proxy is not serving yet")
	}
	cert, err := magic.GetCertificate(hello)
	if err != nil {
		m.logMissing(hello.ServerName, err)
	}
	return cert, err
}

func (m *Manager) logMissing(host string, err error) {
	now := m.opts.Now()
	m.mu.Lock()
	last, seen := m.missing[host]
	known := slices.Contains(m.names, host)
	if seen && now.Sub(last) < missingEvery {
		m.mu.Unlock()
		return
	}
	m.missing[host] = now
	m.mu.Unlock()
	if !known {
		return // a name no route has: the client's mistake, not the operator's
	}
	m.log.Warn("a TLS handshake found no certificate for the host yet; the client's connection fails until one is obtained",
		event.CertificateUnavailable.Attr(), slog.String("host", host), slog.String("error", err.Error()))
}

// HTTPHandler answers http-01 challenges and redirects every other request
// to https, for tls.acme.http_listen.
func (m *Manager) HTTPHandler() http.Handler {
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		iss := m.issuer
		m.mu.Unlock()
		if iss != nil && iss.HandleHTTPChallenge(w, r) {
			return
		}
		redirect.ServeHTTP(w, r)
	})
}

// Stop ends the obtains under way and the renewal loop.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stop != nil {
		m.stop()
	}
	m.mu.Unlock()
	m.cache.Stop()
}

// onEvent turns certmagic's events into the proxy's log events; magic is
// the configuration whose event it is.
func (m *Manager) onEvent(ctx context.Context, magic *certmagic.Config, name string, data map[string]any) error {
	host, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch name {
	case "cert_obtained":
		if !renewal && magic != nil {
			// certmagic tells of a first certificate before it puts it in
			// the cache handshakes read, so a handshake in between found
			// none (tls: internal error). Cache it first: from this line
			// on, handshakes get it, as the event's description says. A
			// renewal replaces a certificate that still serves.
			if _, err := magic.CacheManagedCertificate(ctx, host); err != nil {
				m.log.Warn("a certificate was obtained but could not be loaded; certmagic loads it again", event.CertificateFailed.Attr(),
					slog.String("host", host), slog.Bool("renewal", false), slog.String("error", err.Error()))
			}
		}
		attrs := []slog.Attr{event.CertificateObtained.Attr(), slog.String("host", host), slog.Bool("renewal", renewal)}
		if path, ok := data["certificate_path"].(string); ok {
			attrs = append(attrs, m.describe(ctx, path)...)
		}
		m.log.LogAttrs(ctx, slog.LevelInfo, "obtained a certificate", attrs...)
	case "cert_failed":
		err, _ := data["error"].(error)
		if errors.Is(err, context.Canceled) {
			return nil // a reload or a stop ended the attempt, not the CA
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		m.log.Warn("obtaining a certificate failed; certmagic tries again later", event.CertificateFailed.Attr(),
			slog.String("host", host), slog.Bool("renewal", renewal), slog.String("error", msg))
	}
	return nil
}

// describe reads the serial and expiry of the certificate stored at path.
func (m *Manager) describe(ctx context.Context, path string) []slog.Attr {
	b, err := m.storage.Load(ctx, path)
	if err != nil {
		return nil
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return []slog.Attr{slog.String("serial", c.SerialNumber.Text(16)), slog.Time("not_after", c.NotAfter)}
}
