package proxy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// generation is what one configuration builds: its routes, the
// certificate they present and the outbound transport. A reload builds a
// new one and swaps it in; requests already in flight finish on the one
// they started on.
type generation struct {
	cfg       *config.Config
	routes    map[string]*route // by hostname.Key
	named     []string          // the hosts the configuration names
	cert      *tls.Certificate
	transport *http.Transport // the guarded transport, for idle connection cleanup
	shared    *shared
}

// build makes a generation of cfg, without its routes (route adds them
// once the store is open). It loads the certificate; it contacts no
// remote server.
func (p *Proxy) build(cfg *config.Config) (*generation, error) {
	g := &generation{cfg: cfg, routes: make(map[string]*route), named: cfg.NamedHostNames()}
	if cfg.TLS.ACME == nil {
		cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls: loading %s and %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
		g.cert = &cert
	}
	o := p.opts
	guard := &netguard.Guard{Resolver: o.Resolver, AllowLoopback: o.AllowLoopback, Dial: o.Dial}
	guard.Trust(o.TrustedHosts...)
	guard.Trust(cfg.NamedHosts()...)
	g.transport = netguard.NewTransport(guard.DialContext, netguard.TransportOptions{RootCAs: o.RootCAs})
	return g, nil
}

// route builds g's routes and what they share, on p's store.
func (p *Proxy) route(g *generation) {
	var outbound http.RoundTripper = g.transport
	if p.opts.Transport != nil {
		outbound = p.opts.Transport
	}
	cfg := g.cfg
	sh := &shared{
		outbound: outbound,
		// Metadata, token and document fetches: no redirects.
		hc:      &http.Client{Transport: outbound, CheckRedirect: netguard.NoRedirects, Timeout: 30 * time.Second},
		hot:     p.hot,
		formKey: p.formKey,
	}
	sh.discovery = &upstream.Discoverer{HTTP: sh.hc, Now: p.now, AllowHost: g.allowMetadataHost}
	sh.clients = &clientid.Resolver{HTTP: sh.hc, Now: p.now}
	if !cfg.DisableClientRegistration {
		sh.registry = &registration.Registry{B: p.backend, Now: p.now, UsedTTL: authserver.RefreshTokenTTL}
		sh.regLimit = &registration.Limiter{Now: p.now}
	}
	sh.sessions = &login.Sessions{Records: store.Records[login.Session]{B: p.backend, NS: login.NSSessions}, Now: p.now}
	sh.idTokens = &login.IDTokens{Records: store.Records[login.IDToken]{B: p.backend, NS: login.NSIDTokens}, Now: p.now}
	sh.idp = &login.Provider{
		Issuer: cfg.IdentityProvider.Issuer, ClientID: cfg.IdentityProvider.ClientID, ClientSecret: cfg.IdentityProvider.ClientSecret,
		Scopes: cfg.IDPScopes(), GroupsClaim: cfg.IdentityProvider.GroupsClaim, HTTP: sh.hc, Now: p.now,
	}
	g.shared = sh
	for i := range cfg.Routes {
		g.routes[cfg.Routes[i].Key()] = p.newRoute(g, &cfg.Routes[i], sh)
	}
}

// allowMetadataHost vets a host that a remote document named: hosts of the
// configuration always pass; others must match allowed_metadata_domains
// when it is set. (Where the host resolves is the guard's business, at
// dial time.)
func (g *generation) allowMetadataHost(host string) error {
	allowed := g.cfg.AllowedMetadataDomains
	if len(allowed) == 0 || slices.Contains(g.named, hostname.Name(host)) || config.DomainAllowed(host, allowed) {
		return nil
	}
	return fmt.Errorf("its host %s is not in allowed_metadata_domains", host)
}

// closeIdle releases g's idle outbound connections.
func (g *generation) closeIdle() {
	g.transport.CloseIdleConnections()
	for _, rt := range g.routes {
		rt.fwd.CloseIdleConnections()
	}
}

// Reload swaps in cfg: routes, policies, the identity provider, the
// certificate, everything but the settings a restart applies (listen,
// admin.listen, storage, audit.file; a cfg that changes one is refused).
// Requests in flight and open event streams finish on the routes they
// started on; tokens, grants and sessions are in the store and survive.
// On an error the running configuration stays.
func (p *Proxy) Reload(cfg *config.Config) error {
	p.reloading.Lock()
	defer p.reloading.Unlock()
	old := p.current()
	if err := restartOnly(old.cfg, cfg); err != nil {
		return err
	}
	g, err := p.build(cfg)
	if err != nil {
		return err
	}
	p.route(g)
	if p.acme != nil {
		// The same manager, so the same renewal loop and the
		// certificates it holds; new hosts are obtained, settings apply.
		if err := p.acme.Apply(cfg); err != nil {
			return err
		}
	}
	p.gen.Store(g)
	old.closeIdle()
	return nil
}

// restartOnly names the first setting a reload cannot apply that differs
// between the running configuration and the new one.
func restartOnly(running, next *config.Config) error {
	for _, s := range []struct {
		name string
		same bool
	}{
		{"listen", running.ListenAddr() == next.ListenAddr()},
		{"admin.listen", running.AdminListen() == next.AdminListen()},
		{"storage", running.StorageType() == next.StorageType() && running.StoragePath() == next.StoragePath() &&
			running.StorageKeyFile() == next.StorageKeyFile() && running.Storage.RedisURL == next.Storage.RedisURL &&
			running.Storage.Prefix == next.Storage.Prefix && reflect.DeepEqual(running.Storage.RedisSentinel, next.Storage.RedisSentinel)},
		{"audit.file", running.Path(running.Audit.File) == next.Path(next.Audit.File)},
		// One certificate manager for the process: turning ACME on or off,
		// or moving its http-01 listener, takes a restart.
		{"tls.acme", (running.TLS.ACME == nil) == (next.TLS.ACME == nil)},
		{"tls.acme.http_listen", running.TLS.ACME == nil || next.TLS.ACME == nil || running.TLS.ACME.HTTPListen == next.TLS.ACME.HTTPListen},
		// One tracer and exporter for the process (its batch processor
		// holds spans not sent yet): turning tracing on, off or elsewhere,
		// by the file or the OTEL_* variables, takes a restart.
		{"tracing", reflect.DeepEqual(running.TracingSettings(), next.TracingSettings())},
	} {
		if !s.same {
			return fmt.Errorf("%s changed, which a reload cannot apply: restart the proxy for it; the running configuration stays", s.name)
		}
	}
	return nil
}

// Files are the files the running configuration reads: its certificate
// and key, or under tls.acme its ca_file (a reload re-reads them).
func (p *Proxy) Files() []string {
	cfg := p.current().cfg
	if a := cfg.TLS.ACME; a != nil {
		if a.CAFile == "" {
			return nil
		}
		return []string{cfg.Path(a.CAFile)}
	}
	return []string{cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile)}
}
