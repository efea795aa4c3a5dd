package proxy

import (
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/connect"
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/forward"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/policy"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"

	"log/slog"
)

// pathPrefix starts the proxy's own endpoints on every route host.
const pathPrefix = "/.mcp-proxy/"

// shared is what every route of one proxy uses.
type shared struct {
	outbound  http.RoundTripper
	hc        *http.Client
	hot       *store.HotCache
	formKey   []byte
	discovery *upstream.Discoverer
	clients   *clientid.Resolver
	// registry is nil when dynamic client registration is off.
	registry *registration.Registry
	regLimit *registration.Limiter
	idp      *login.Provider
	sessions *login.Sessions
	idTokens *login.IDTokens
}

// route is one configured route: its authorization server, and the
// request path of its MCP traffic.
type route struct {
	cfg    *config.Route
	origin string
	rs     *apierror.Responder
	as     *authserver.Server
	flow   *connect.Flow
	policy *policy.Policy
	tokens *tokens.Source
	fwd    *forward.Handler
	// mcp is the request path: bearer → binding → policy → tokens →
	// forward.
	mcp http.Handler
}

func (p *Proxy) newRoute(g *generation, rc *config.Route, sh *shared) *route {
	log := p.log.With(slog.String("route", rc.Key()))
	rs := &apierror.Responder{Log: log, Count: func(c apierror.Code) { p.metrics.Error(rc.Key(), c) }, Page: pages.Error(rc.Key())}
	rec := &audit.Recorder{Log: p.audit, Route: rc.Key(), Binding: string(rc.Server().Binding()), Now: p.now, Logger: log}
	creds := &credentials.Store{Route: rc, Records: store.Records[credentials.Registration]{B: p.backend, NS: credentials.NSRegistrations}}
	src := &tokens.Source{
		Route: rc, Records: store.Records[upstream.Token]{B: p.backend, NS: tokens.NSUpstream, Hot: sh.hot},
		Locks: p.backend, HTTP: sh.hc, Now: p.now, Metrics: p.metrics, Log: log, Audit: rec, Credentials: creds,
		IDTokens: sh.idTokens, IdP: sh.idp,
	}
	flow := &connect.Flow{
		Route: rc, Discovery: sh.discovery, HTTP: sh.hc, Tokens: src, Credentials: creds, Sessions: sh.sessions,
		Pending:   store.Records[connect.Pending]{B: p.backend, NS: connect.NSPending},
		Responder: rs, Metrics: p.metrics, Log: log, Now: p.now,
	}
	pol := policy.New(rc, sh.idp.Source(), g.cfg.IdentityProvider.ClaimsMaxAgeDuration(), p.now)
	as := authserver.New(authserver.Options{
		Route: rc, AllowedClientIDDomains: g.cfg.AllowedClientIDDomains, Backend: p.backend, Access: p.access,
		Tokens: src, Upstream: flow, Sessions: sh.sessions, IDTokens: sh.idTokens, Policy: pol, Clients: sh.clients,
		Registry: sh.registry, RegistrationLimit: sh.regLimit, IdP: sh.idp, Metrics: p.metrics, Audit: rec,
		Log: log, Now: p.now, Responder: rs, FormKey: sh.formKey,
	})
	flow.Done = as
	fwd := forward.New(forward.Options{
		Route: rc, Transport: sh.outbound, Tokens: src, Responder: rs, Metrics: p.metrics, Log: log, Now: p.now,
		Streams: &p.streams, Discovery: sh.discovery,
	})
	decide := &policy.Step{Policy: pol, Route: rc, Responder: rs, Log: log, Metrics: p.metrics, Audit: rec}
	mcp := bearer.Require(p.access, rc, rs,
		binding.Resolve(rc, rs,
			decide.Handler(
				src.Inject(rs, fwd))))
	return &route{cfg: rc, origin: rc.Origin(), rs: rs, as: as, flow: flow, policy: pol, tokens: src, fwd: fwd, mcp: mcp}
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/.") {
		if h := rt.as.Handler(path); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		if h := rt.flow.Handler(path); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(path, pathPrefix) {
			rt.rs.Write(w, r, apierror.New(apierror.CodeNotFound, "%s is not an endpoint of the proxy", path))
			return
		}
	}
	if err := rt.admit(w, r); err != nil {
		rt.rs.Write(w, r, err)
		return
	}
	rt.mcp.ServeHTTP(w, r)
}

// admit checks what is refused before any token is looked at: a web page
// of an origin the route does not allow, and a body over the route's limit.
func (rt *route) admit(w http.ResponseWriter, r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !rt.originAllowed(o) {
		return apierror.New(apierror.CodeOriginNotAllowed,
			"Requests from web pages of %s are not allowed on this route. Add the origin to mcp.server.allowed_origins if it is an MCP client you trust.", o)
	}
	limit := rt.cfg.MaxRequestBytes()
	if r.ContentLength > limit {
		return apierror.TooLarge(limit)
	}
	// A body of known length cannot outgrow it (the server stops reading
	// there); only one of unknown length needs the limit on its reads.
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

func (rt *route) originAllowed(o string) bool {
	if strings.EqualFold(o, rt.origin) {
		return true
	}
	for _, a := range rt.cfg.Server().AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), o) {
			return true
		}
	}
	return false
}
