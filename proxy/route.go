package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// The proxy's own paths on every route host. Everything else is forwarded.
const (
	pathPRM         = "/.well-known/oauth-protected-resource"
	pathASM         = "/.well-known/oauth-authorization-server"
	pathPrefix      = "/.mcp-proxy/"
	pathAuthorize   = "/.mcp-proxy/authorize"
	pathToken       = "/.mcp-proxy/token"
	pathConsent     = "/.mcp-proxy/consent"
	pathLoginCB     = "/.mcp-proxy/login/callback"
	pathUpstreamCB  = "/.mcp-proxy/upstream/callback"
	pathClientMeta  = "/.mcp-proxy/client-metadata.json"
	pathConnections = "/.mcp-proxy/connections"
	pathDisconnect  = "/.mcp-proxy/connections/disconnect"
	sessionCookie   = "__Host-mcp-proxy-session"
	loginCookie     = "__Host-mcp-proxy-login"
	metadataMaxAge  = "public, max-age=3600"
	upstreamAuthHdr = "Authorization"
)

// route is one configured route with everything derived from it once.
type route struct {
	p      *Proxy
	cfg    *config.Route
	host   string   // lower-case host[:port] of from
	origin string   // https://host
	to     *url.URL // the remote server
	// The route's own URLs at the proxy.
	issuer, cimdURL, upstreamCallback, loginCallback string
	rp                                               *httputil.ReverseProxy
	log                                              *slog.Logger
	maxBody                                          int64
	binding                                          string // per_user, per_session or service_account
}

func newRoute(p *Proxy, rc *config.Route) *route {
	from := rc.FromURL()
	rt := &route{
		p:      p,
		cfg:    rc,
		host:   hostKey(from.Host),
		origin: from.Scheme + "://" + from.Host,
		to:     rc.ToURL(),
	}
	rt.issuer = rt.origin
	rt.cimdURL = rt.origin + pathClientMeta
	rt.upstreamCallback = rt.origin + pathUpstreamCB
	rt.loginCallback = rt.origin + pathLoginCB
	rt.log = p.log.With(slog.String("route", rt.host))
	rt.rp = p.newReverseProxy(rt)
	rt.maxBody = rc.MaxRequestBytes()
	rt.binding = rc.Server().Binding()
	return rt
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !strings.HasPrefix(path, "/.") {
		rt.forward(w, r)
		return
	}
	switch {
	case path == pathPRM || strings.HasPrefix(path, pathPRM+"/"):
		rt.protectedResourceMetadata(w, r)
	case path == pathASM:
		rt.authorizationServerMetadata(w, r)
	case path == pathClientMeta:
		rt.clientMetadata(w, r)
	case path == pathAuthorize:
		rt.authorize(w, r)
	case path == pathToken:
		rt.token(w, r)
	case path == pathConsent:
		rt.consent(w, r)
	case path == pathLoginCB:
		rt.loginCallbackHandler(w, r)
	case path == pathUpstreamCB:
		rt.upstreamCallbackHandler(w, r)
	case path == pathConnections:
		rt.connections(w, r)
	case path == pathDisconnect:
		rt.disconnect(w, r)
	case strings.HasPrefix(path, pathPrefix):
		rt.writeError(w, r, apierror.New(apierror.CodeNotFound, http.StatusNotFound, "%s is not an endpoint of the proxy", path))
	default:
		rt.forward(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, cacheControl string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func onlyGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	w.Header().Set("Allow", "GET")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// protectedResourceMetadata serves RFC 9728 metadata for the resource at
// the path after the well-known prefix: /.well-known/oauth-protected-resource/mcp
// describes https://host/mcp, and the bare prefix describes https://host.
func (rt *route) protectedResourceMetadata(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, metadataMaxAge, &oauthex.ProtectedResourceMetadata{
		Resource:               rt.origin + strings.TrimPrefix(r.URL.Path, pathPRM),
		AuthorizationServers:   []string{rt.issuer},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "MCP server at " + rt.host + " (through mcp-proxy)",
	})
}

// authorizationServerMetadata serves RFC 8414 metadata: the proxy is the
// MCP client's authorization server.
func (rt *route) authorizationServerMetadata(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, metadataMaxAge, &oauthex.AuthServerMeta{
		Issuer:                                     rt.issuer,
		AuthorizationEndpoint:                      rt.origin + pathAuthorize,
		TokenEndpoint:                              rt.origin + pathToken,
		ResponseTypesSupported:                     []string{"code"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          []string{"none"},
		ClientIDMetadataDocumentSupported:          true,
		AuthorizationResponseIssParameterSupported: true,
	})
}

// clientMetadata serves the route's own Client ID Metadata Document: the
// proxy's client id at the remote authorization server is this URL.
func (rt *route) clientMetadata(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, metadataMaxAge, map[string]any{
		"client_id":                  rt.cimdURL,
		"client_name":                "mcp-proxy for " + rt.host,
		"client_uri":                 rt.origin,
		"redirect_uris":              []string{rt.upstreamCallback},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
}

// prmURL is the proxy's protected resource metadata URL for a path.
func (rt *route) prmURL(path string) string {
	if path == "/" || path == "" {
		return rt.origin + pathPRM
	}
	return rt.origin + pathPRM + path
}

// challenge answers 401 with the challenge that points an MCP client at the
// proxy's protected resource metadata for the requested path.
func (rt *route) challenge(w http.ResponseWriter, r *http.Request, errCode, desc string) {
	h := fmt.Sprintf(`Bearer resource_metadata="%s"`, rt.prmURL(r.URL.Path))
	msg := "This MCP server needs authorization: run the OAuth flow that the WWW-Authenticate header points to."
	if errCode != "" {
		h += fmt.Sprintf(`, error="%s", error_description="%s"`, errCode, desc)
		msg = desc
	}
	rt.writeError(w, r, &apierror.Error{
		Code: apierror.CodeUnauthorized, Status: http.StatusUnauthorized, Message: msg,
		Header: http.Header{"Www-Authenticate": {h}},
	})
}

// bearer returns the bearer token of r, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type ctxKey int

const upstreamTokenKey ctxKey = iota

// forwarded rides the context of a forwarded request: the upstream token it
// carries (nil for a remote server without OAuth) and when it started.
type forwarded struct {
	ut    *store.UpstreamToken
	start time.Time
}

// forward is the hot path: check the MCP client's token, find the upstream
// token by the grant's precomputed binding key, inject it, forward.
func (rt *route) forward(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && !rt.originAllowed(o) {
		rt.writeError(w, r, apierror.New(apierror.CodeOriginNotAllowed, http.StatusForbidden,
			"Requests from web pages of %s are not allowed on this route. Add the origin to mcp.server.allowed_origins if it is an MCP client you trust.", o))
		return
	}
	if r.ContentLength > rt.maxBody {
		rt.tooLarge(w, r)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	tok := bearer(r)
	if tok == "" {
		rt.challenge(w, r, "", "")
		return
	}
	now := rt.p.now()
	at, err := hotRecord[store.AccessToken](r.Context(), rt.p.st, nsAccess, secretKey(tok))
	if err != nil {
		rt.p.storageFailure(w, r, rt, err)
		return
	}
	if at == nil || !now.Before(at.Expires) || at.Grant.Route != rt.host {
		rt.challenge(w, r, "invalid_token", "the token is unknown or expired; authorize again")
		return
	}
	g := at.Grant
	var ut *store.UpstreamToken
	if g.BindingKey != "" {
		var err error
		ut, err = rt.p.upstreamToken(r.Context(), rt, g.BindingKey)
		if err != nil {
			rt.writeError(w, r, err)
			return
		}
		if ut == nil {
			rt.challenge(w, r, "invalid_token", "the remote server's authorization is missing or was withdrawn; authorize again")
			return
		}
	}
	if ut != nil && rt.binding == config.BindingServiceAccount {
		// Every use of a shared token is audited with the acting user; a
		// request that cannot be audited is not forwarded.
		if err := rt.auditErr(r.Context(), g.Subject, g.BindingKey, "upstream_request", "allowed", nil); err != nil {
			rt.writeError(w, r, apierror.Wrap(err, apierror.CodeInternal, http.StatusServiceUnavailable,
				"The audit log cannot be written, so the shared connection is not used. Try again shortly."))
			return
		}
	}
	ctx := context.WithValue(r.Context(), upstreamTokenKey, &forwarded{ut: ut, start: now})
	if r.Method == http.MethodGet {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer rt.p.trackStream(r, cancel)()
	}
	rt.rp.ServeHTTP(w, r.WithContext(ctx))
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

func (rt *route) tooLarge(w http.ResponseWriter, r *http.Request) {
	rt.writeError(w, r, apierror.New(apierror.CodeRequestTooLarge, http.StatusRequestEntityTooLarge,
		"The request body is larger than this route accepts (%d bytes; mcp.server.max_request_bytes).", rt.maxBody))
}

// rewrite builds the outbound request: the remote server's URL, the
// upstream token in place of the client's, no proxy cookies.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(rt.to)
	pr.Out.Host = "" // the remote server's own host
	pr.Out.Header.Del(upstreamAuthHdr)
	if f, _ := pr.In.Context().Value(upstreamTokenKey).(*forwarded); f != nil && f.ut != nil {
		pr.Out.Header.Set(upstreamAuthHdr, "Bearer "+f.ut.AccessToken)
	}
	stripProxyCookies(pr.Out.Header)
}

// stripProxyCookies removes the proxy's own cookies from a request that
// leaves for the remote server.
func stripProxyCookies(h http.Header) {
	cs := h.Values("Cookie")
	if len(cs) == 0 {
		return
	}
	h.Del("Cookie")
	for _, line := range cs {
		var keep []string
		for c := range strings.SplitSeq(line, ";") {
			if name, _, _ := strings.Cut(strings.TrimSpace(c), "="); strings.HasPrefix(name, "__Host-mcp-proxy") {
				continue
			}
			keep = append(keep, strings.TrimSpace(c))
		}
		if len(keep) > 0 {
			h.Add("Cookie", strings.Join(keep, "; "))
		}
	}
}

// maxStepUps bounds how often in a row the proxy sends a user to consent
// to more scope for one binding key (MCP authorization: clients SHOULD cap
// step-up retries).
const maxStepUps = 3

// modifyResponse reacts to the remote server's verdict on the upstream
// token. A 401 means it no longer accepts the token: the proxy drops it
// and asks the MCP client to authorize again, which leads the user back
// through the remote consent. A 403 with error="insufficient_scope" starts
// a step-up: the proxy notes the scopes the remote server wants and sends
// the MCP client its own insufficient_scope challenge, so the next
// authorization asks the user for them (bounded by maxStepUps).
func (rt *route) modifyResponse(resp *http.Response) error {
	f, _ := resp.Request.Context().Value(upstreamTokenKey).(*forwarded)
	if f == nil {
		return nil
	}
	rt.p.metrics.UpstreamRequest(rt.host, resp.StatusCode, rt.p.now().Sub(f.start))
	ut := f.ut
	if ut == nil {
		return nil
	}
	ctx := resp.Request.Context()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		_ = rt.p.st.del(ctx, nsUpstream, ut.Key)
		rt.log.Info("the remote server refused the upstream token; dropped it",
			slog.String("event", "token_rejected"), slog.String("user", ut.Subject),
			slog.String("binding", rt.binding), slog.String("request_id", apierror.RequestID(ctx)))
		return errUpstreamRejected
	case resp.StatusCode == http.StatusForbidden:
		scopes, ok := insufficientScope(resp.Header)
		if !ok {
			return nil
		}
		next := *ut
		next.NeedScopes = unionScopes(ut.Scopes, ut.NeedScopes, scopes)
		next.StepUps++
		_ = rt.p.st.put(ctx, nsUpstream, ut.Key, &next, time.Time{})
		rt.log.Info("the remote server asked for more scope", slog.String("event", "scope_step_up"),
			slog.String("user", ut.Subject), slog.String("binding", rt.binding), slog.Any("scopes", next.NeedScopes),
			slog.Int("attempt", next.StepUps), slog.String("request_id", apierror.RequestID(ctx)))
		if next.StepUps > maxStepUps {
			return errScopeExhausted
		}
		return &stepUpError{scopes: next.NeedScopes}
	case ut.StepUps > 0 && resp.StatusCode < 400:
		next := *ut
		next.StepUps, next.NeedScopes = 0, nil
		_ = rt.p.st.put(ctx, nsUpstream, ut.Key, &next, time.Time{})
	}
	return nil
}

// insufficientScope reads an RFC 6750 insufficient_scope challenge.
func insufficientScope(h http.Header) ([]string, bool) {
	cs, err := oauthex.ParseWWWAuthenticate(h.Values("WWW-Authenticate"))
	if err != nil {
		return nil, false
	}
	for _, c := range cs {
		if c.Scheme == "bearer" && c.Params["error"] == "insufficient_scope" {
			return strings.Fields(c.Params["scope"]), true
		}
	}
	return nil, false
}

type stepUpError struct{ scopes []string }

func (e *stepUpError) Error() string {
	return "the remote server needs scope " + strings.Join(e.scopes, " ")
}

var (
	errUpstreamRejected = errors.New("the remote server refused the upstream token")
	errScopeExhausted   = errors.New("the remote server keeps asking for more scope")
)

// forwardError answers a failed forward: 502 when the remote server could
// not be reached, 504 when it did not answer in time, and the challenges of
// modifyResponse.
func (rt *route) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if f, _ := r.Context().Value(upstreamTokenKey).(*forwarded); f != nil && !errors.Is(err, errUpstreamRejected) {
		var su *stepUpError
		if !errors.As(err, &su) && !errors.Is(err, errScopeExhausted) {
			rt.p.metrics.UpstreamRequest(rt.host, 0, rt.p.now().Sub(f.start))
		}
	}
	var su *stepUpError
	var mb *http.MaxBytesError
	switch {
	case errors.Is(err, errUpstreamRejected):
		rt.challenge(w, r, "invalid_token", "the remote server no longer accepts the proxy's token for you; authorize again")
		return
	case errors.As(err, &su):
		h := fmt.Sprintf(`Bearer error="insufficient_scope", scope="%s", resource_metadata="%s", error_description="the remote server needs more scope; authorize again"`,
			strings.Join(su.scopes, " "), rt.prmURL(r.URL.Path))
		rt.writeError(w, r, &apierror.Error{Code: apierror.CodeInsufficientScope, Status: http.StatusForbidden,
			Message: "The remote MCP server needs more scope (" + strings.Join(su.scopes, " ") + "); authorize again to consent to it.",
			Header:  http.Header{"Www-Authenticate": {h}}})
		return
	case errors.Is(err, errScopeExhausted):
		rt.writeError(w, r, apierror.New(apierror.CodeScopeExhausted, http.StatusForbidden,
			"The remote MCP server %s kept asking for more scope after %d consents; the proxy stopped asking. Check the scopes the remote server and its authorization server expect.", rt.to.Host, maxStepUps))
		return
	case errors.As(err, &mb):
		rt.tooLarge(w, r)
		return
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nothing to answer
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		rt.writeError(w, r, apierror.Wrap(err, apierror.CodeUpstreamTimeout, http.StatusGatewayTimeout,
			"The remote MCP server %s did not answer in time.", rt.to.Host))
		return
	}
	rt.writeError(w, r, apierror.Wrap(err, apierror.CodeUpstreamUnreachable, http.StatusBadGateway,
		"The remote MCP server %s could not be reached.", rt.to.Host))
}

// upstreamFor maps a downstream URL on this route to the remote server.
func (rt *route) upstreamFor(downstream string) string {
	u := *rt.to
	path := "/"
	if d, err := url.Parse(downstream); err == nil && d.Path != "" {
		path = d.Path
	}
	u.Path = strings.TrimSuffix(rt.to.Path, "/") + path
	if u.Path != "/" {
		u.Path = strings.TrimSuffix(u.Path, "/")
	}
	if u.Path == "/" && rt.to.Path == "" {
		u.Path = ""
	}
	return u.String()
}

// bindingKey names the upstream token a grant uses, by the route's
// binding mode: per_user (route, user, remote endpoint), per_session (also
// the MCP client's authorization) or service_account (route and remote
// endpoint only).
func (rt *route) bindingKey(subject, session, upstreamURL string) string {
	switch rt.binding {
	case config.BindingServiceAccount:
		return rt.binding + "\x00" + rt.host + "\x00" + keyPart(upstreamURL)
	case config.BindingPerSession:
		return rt.binding + "\x00" + rt.host + "\x00" + keyPart(subject) + "\x00" + keyPart(session) + "\x00" + keyPart(upstreamURL)
	default:
		return rt.binding + "\x00" + rt.host + "\x00" + keyPart(subject) + "\x00" + keyPart(upstreamURL)
	}
}

// userKeyPrefix starts the binding keys of one user's tokens on the route
// (none under service_account, where tokens belong to the route).
func (rt *route) userKeyPrefix(subject string) string {
	return rt.binding + "\x00" + rt.host + "\x00" + keyPart(subject) + "\x00"
}

// writeError answers with an error of the catalog, counting it.
func (rt *route) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *apierror.Error
	if errors.As(err, &e) {
		rt.p.metrics.Error(rt.host, e.Code)
	} else {
		rt.p.metrics.Error(rt.host, apierror.CodeInternal)
	}
	apierror.Write(w, r, rt.log, err)
}

// audit writes one audit record when an audit log is configured; a failure
// is logged.
func (rt *route) audit(ctx context.Context, user, bindingKey, action, decision string, detail map[string]string) {
	if err := rt.auditErr(ctx, user, bindingKey, action, decision, detail); err != nil {
		rt.log.Error("the audit log could not be written", slog.String("event", "audit_failed"),
			slog.String("action", action), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
	}
}

func (rt *route) auditErr(ctx context.Context, user, bindingKey, action, decision string, detail map[string]string) error {
	if rt.p.audit == nil {
		return nil
	}
	return rt.p.audit.Append(audit.Record{
		Time: rt.p.now(), User: user, Route: rt.host, Binding: rt.binding, BindingKeyID: audit.KeyID(bindingKey),
		Action: action, Decision: decision, RequestID: apierror.RequestID(ctx), Detail: detail,
	})
}
