// Package forward is the last step of the request path: it sends the
// request to the remote MCP server with the upstream token in place of the
// client's (httputil.ReverseProxy), streams the answer, and turns the remote
// server's verdict on the token (401, 403 insufficient_scope) into the
// proxy's own challenges.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// MaxStepUps bounds how often in a row the proxy sends a user to consent
// to more scope for one binding key (MCP authorization: clients SHOULD cap
// step-up retries).
const MaxStepUps = 3

// Options configure a route's forwarder.
type Options struct {
	Route     *config.Route
	Transport http.RoundTripper
	Tokens    *tokens.Source
	Responder *apierror.Responder
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	Now       func() time.Time
	// Streams tracks long-lived GET streams for shutdown.
	Streams *Streams
	// Discovery forgets what it learned of a remote endpoint when the
	// remote server's 401 says it changed (a new authorization server, or
	// authorization where there was none).
	Discovery *upstream.Discoverer
}

// Handler forwards one route's requests.
type Handler struct {
	o  Options
	to *url.URL
	// rp forwards requests (POSTs: JSON-RPC messages and their answers);
	// streams forwards GETs, the long-lived event streams, with small
	// copy buffers and over HTTP/2 where the remote server speaks it.
	rp, streams *httputil.ReverseProxy
	auth        authHeaders
	// out and streamOut are the route's own transports (clones of the
	// proxy's), whose idle connections Close releases.
	out, streamOut http.RoundTripper
}

// CloseIdleConnections releases the route's idle connections to the remote
// server.
func (h *Handler) CloseIdleConnections() {
	for _, t := range []http.RoundTripper{h.out, h.streamOut} {
		if c, ok := t.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// New returns the forwarder of a route.
func New(o Options) *Handler {
	h := &Handler{o: o, to: o.Route.ToURL(), out: forwardingTransport(o.Transport), streamOut: streamTransport(o.Transport)}
	h.rp = h.reverseProxy(h.out, copyBuffers)
	h.streams = h.reverseProxy(h.streamOut, eventBuffers)
	return h
}

func (h *Handler) reverseProxy(out http.RoundTripper, pool httputil.BufferPool) *httputil.ReverseProxy {
	route, o := h.o.Route.Key(), h.o
	return &httputil.ReverseProxy{
		Rewrite: h.rewrite,
		Transport: headerTimeout{base: h.proofs(out), d: o.Route.Server().Timeout(), now: o.Now,
			observe: func(code int, d time.Duration) { o.Metrics.UpstreamRequest(route, code, d) }},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.forwardError,
		ErrorLog:       slog.NewLogLogger(o.Log.With(event.HttpLibrary.Attr()).Handler(), slog.LevelWarn),
		// FlushInterval 0: answers of known length are not flushed until
		// they are written; server-sent events (and answers of unknown
		// length that collectAnswer leaves as they are) are flushed after
		// every write, as ReverseProxy does for them.
		BufferPool: pool,
	}
}

// proofs adds a DPoP proof to each request that presents a DPoP-bound
// token, and answers the remote server's nonce challenges (dpop.Transport).
func (h *Handler) proofs(out http.RoundTripper) http.RoundTripper {
	return &dpop.Transport{Base: out, Nonces: h.o.Tokens.Nonces(), Now: h.o.Now, Key: func(r *http.Request) *dpop.Key {
		if sc := request.From(r.Context()); sc != nil && sc.Token != nil && sc.Token.Bound() {
			return h.auth.key(sc.Token)
		}
		return nil
	}}
}

// ServeHTTP forwards r; a GET (a server-sent event stream) is tracked so
// that shutdown can end it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := readSmallBody(r); err != nil {
		h.forwardError(w, r, err)
		return
	}
	if trace.SpanFromContext(r.Context()).IsRecording() {
		var span trace.Span
		r, span = h.traced(r)
		defer span.End()
	}
	if r.Method == http.MethodGet {
		ctx, cancel := context.WithCancel(r.Context())
		defer h.o.Streams.track(r, cancel)()
		h.streams.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	h.rp.ServeHTTP(w, r)
}

// traced starts the span of the call to the remote server, a child of the
// request's, and puts the MCP attributes of the request's JSON-RPC message
// on both: the message the policy step read, else the body readSmallBody
// read (what is forwarded does not change).
func (h *Handler) traced(r *http.Request) (*http.Request, trace.Span) {
	ctx, span := tracing.Start(r.Context(), r.Method, trace.SpanKindClient)
	port, _ := strconv.Atoi(h.to.Port())
	if port == 0 {
		port = 443
		if h.to.Scheme == "http" {
			port = 80
		}
	}
	span.SetAttributes(tracing.HTTPRequestMethod.String(r.Method), tracing.ServerAddress.String(h.to.Hostname()), tracing.ServerPort.Int(port))
	tracing.HeaderAttributes(span, r.Header)
	tracing.Message(ctx, span, message(r))
	return r.WithContext(ctx), span
}

// message is the JSON-RPC message of r, when the policy step read it or r
// is a POST whose body was read whole; nil otherwise.
func message(r *http.Request) *jsonrpc.Message {
	if sc := request.From(r.Context()); sc != nil && sc.Message != nil {
		return sc.Message
	}
	if b, ok := r.Body.(*request.Body); ok && r.Method == http.MethodPost {
		if m, err := jsonrpc.Parse(b.Bytes()); err == nil {
			return m
		}
	}
	return nil
}

const upstreamAuthHdr = "Authorization"

// rewrite builds the outbound request: the remote server's URL, the
// upstream token in place of the client's, no proxy cookies.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(h.to)
	pr.Out.Host = "" // the remote server's own host
	setBody(pr.In, pr.Out)
	pr.Out.Header.Del(upstreamAuthHdr)
	if sc := request.From(pr.In.Context()); sc != nil && sc.Token != nil {
		pr.Out.Header.Set(upstreamAuthHdr, h.auth.value(sc.Token))
	}
	stripProxyCookies(pr.Out.Header)
	ctx := pr.In.Context()
	tracing.Inject(ctx, pr.Out.Header)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.URLPath.String(pr.Out.URL.Path))
	}
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

// modifyResponse reacts to the remote server's verdict on the upstream
// token. A 401 means it no longer accepts the token: the proxy drops it
// and asks the MCP client to authorize again, which leads the user back
// through the remote consent. A 403 with error="insufficient_scope" starts
// a step-up: the proxy notes the scopes the remote server wants and sends
// the MCP client its own insufficient_scope challenge, so the next
// authorization asks the user for them (bounded by MaxStepUps).
func (h *Handler) modifyResponse(resp *http.Response) error {
	ctx := resp.Request.Context()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		tracing.SetStatus(span, resp.StatusCode, true)
	}
	sc := request.From(ctx)
	var t *upstream.Token
	if sc != nil {
		t = sc.Token
	}
	if resp.StatusCode == http.StatusUnauthorized && t != nil && t.Bound() && dpop.NonceChallenge(resp) {
		return errNonceRefused // the token is good; the nonce was not
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// The remote server's own challenge never reaches the MCP client: it
		// would point the client at the remote server's metadata.
		if sc != nil && sc.Grant != nil && h.o.Discovery != nil {
			h.o.Discovery.Invalidate(sc.Grant.Upstream)
		}
		if t == nil {
			return errUpstreamChallenged
		}
		h.o.Tokens.Rejected(ctx, t)
		return errUpstreamRejected
	}
	if t == nil {
		return finish(resp, sc)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden:
		scopes, ok := insufficientScope(resp.Header)
		if !ok {
			return nil
		}
		need, n := h.o.Tokens.StepUp(ctx, t, scopes)
		if n > MaxStepUps {
			return errScopeExhausted
		}
		return &stepUpError{scopes: need}
	case resp.StatusCode < 400 && t.StepUps > 0:
		h.o.Tokens.Answered(ctx, t)
	}
	return finish(resp, sc)
}

// insufficientScope reads an RFC 6750 insufficient_scope challenge.
func insufficientScope(h http.Header) ([]string, bool) {
	cs, err := oauthex.ParseWWWAuthenticate(h.Values("WWW-Authenticate"))
	if err != nil {
		return nil, false
	}
	for _, c := range cs {
		if (c.Scheme == "bearer" || c.Scheme == "dpop") && c.Params["error"] == "insufficient_scope" {
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
	errUpstreamRejected   = errors.New("the remote server refused the upstream token")
	errUpstreamChallenged = errors.New("the remote server asks for authorization")
	errScopeExhausted     = errors.New("the remote server keeps asking for more scope")
	errNonceRefused       = errors.New("the remote server refused the DPoP nonce it asked for")
)

// forwardError answers a failed forward: 502 when the remote server could
// not be reached, 504 when it did not answer in time, and the challenges of
// modifyResponse. (The upstream request's duration and code were recorded
// by the transport, headerTimeout.)
func (h *Handler) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nothing to answer
	}
	h.o.Responder.Write(w, r, h.answer(r, err))
}

func (h *Handler) answer(r *http.Request, err error) error {
	var su *stepUpError
	var mb *http.MaxBytesError
	switch {
	case errors.Is(err, errUpstreamRejected):
		return apierror.Challenge(h.o.Route.MetadataURL(r.URL.Path), "invalid_token", "the remote server no longer accepts the proxy's token for you; authorize again")
	case errors.Is(err, errUpstreamChallenged):
		return apierror.Challenge(h.o.Route.MetadataURL(r.URL.Path), "invalid_token", "the remote server now asks for authorization; authorize again")
	case errors.As(err, &su):
		hdr := fmt.Sprintf(`Bearer error="insufficient_scope", scope="%s", resource_metadata="%s", error_description="the remote server needs more scope; authorize again"`,
			strings.Join(su.scopes, " "), h.o.Route.MetadataURL(r.URL.Path))
		return apierror.New(apierror.CodeInsufficientScope, "The remote MCP server needs more scope (%s); authorize again to consent to it.",
			strings.Join(su.scopes, " ")).WithHeader("Www-Authenticate", hdr)
	case errors.Is(err, errScopeExhausted):
		return apierror.New(apierror.CodeScopeExhausted,
			"The remote MCP server %s kept asking for more scope after %d consents; the proxy stopped asking. Check the scopes the remote server and its authorization server expect.", h.to.Host, MaxStepUps)
	case errors.Is(err, errNonceRefused):
		return apierror.New(apierror.CodeDPoPNonce,
			"The remote MCP server %s asked for a fresh DPoP nonce again after the proxy sent the one it asked for. Your authorization is kept; try again.", h.to.Host)
	case errors.As(err, &mb):
		return apierror.TooLarge(h.o.Route.MaxRequestBytes())
	case errors.Is(err, errNotFiltered):
		return apierror.Wrap(err, apierror.CodeInternal,
			"The remote server's answer could not be filtered by the route's access policy, so the proxy did not pass it on.")
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return apierror.Wrap(err, apierror.CodeUpstreamTimeout,
			"The remote MCP server %s did not answer in time.", h.to.Host)
	}
	return apierror.Wrap(err, apierror.CodeUpstreamUnreachable,
		"The remote MCP server %s could not be reached.", h.to.Host)
}

// Streams are the long-lived GET streams in flight, which a graceful
// shutdown would otherwise wait out: their clients reconnect (to the next
// process) and resume.
type Streams struct {
	mu      sync.Mutex
	cancels map[*http.Request]context.CancelFunc
}

func (s *Streams) track(r *http.Request, cancel context.CancelFunc) func() {
	s.mu.Lock()
	if s.cancels == nil {
		s.cancels = make(map[*http.Request]context.CancelFunc)
	}
	s.cancels[r] = cancel
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.cancels, r)
		s.mu.Unlock()
		cancel()
	}
}

// CancelAll ends every stream in flight.
func (s *Streams) CancelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.cancels {
		cancel()
	}
}
