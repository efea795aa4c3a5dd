package policy

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
)

// MaxInspected is the largest request body the proxy reads to decide on
// it; MCP messages are a few hundred bytes.
const MaxInspected = 1 << 20

// Step is the policy step of a route's request path. With no policy it only
// checks that the mirrored headers agree with the body.
type Step struct {
	Policy    *Policy // nil: the route has none
	Route     *config.Route
	Responder *apierror.Responder
	Log       *slog.Logger
	Metrics   *metrics.Metrics
	Audit     *audit.Recorder
}

// Handler returns the step in front of next.
func (s *Step) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := request.From(r.Context())
		if sc == nil {
			s.Responder.Write(w, r, apierror.New(apierror.CodeInternal, "The request reached the policy step without a grant."))
			return
		}
		if err := s.checkRoute(r, sc); err != nil {
			s.Responder.Write(w, r, err)
			return
		}
		m, err := s.read(r)
		var mismatch *jsonrpc.HeaderError
		switch {
		case errors.As(err, &mismatch) && m.ID != nil:
			// Answered as the transport has servers answer it, so that
			// MCP clients read it as they read the server's own.
			s.Responder.WriteRPC(w, r, json.RawMessage(m.ID), HeaderMismatchCode,
				apierror.New(apierror.CodeHeaderMismatch, "%s", mismatch.Reason))
			return
		case errors.As(err, &mismatch):
			s.Responder.Write(w, r, apierror.New(apierror.CodeHeaderMismatch, "%s", mismatch.Reason))
			return
		case err != nil:
			s.Responder.Write(w, r, err)
			return
		}
		if m != nil {
			tracing.Message(r.Context(), trace.SpanFromContext(r.Context()), m)
		}
		if m != nil && s.Policy.InspectsMessages() {
			d := s.Policy.Message(sc.Identity, m)
			s.count(d)
			if !d.Allowed {
				s.refuseMessage(w, r, sc, m, d)
				return
			}
		}
		if s.Policy.InspectsMessages() {
			sc.Message = m
			if mayList(r, m) {
				sc.Visible = s.Policy.Keep(sc.Identity)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// mayList reports whether the answer to r may hold a list the policy
// filters: the answer to a list request, or anything on a GET stream, where
// a resumed stream (Last-Event-ID) replays the answers of earlier POSTs.
// The answer to a POST of another method holds that method's result only.
func mayList(r *http.Request, m *jsonrpc.Message) bool {
	if r.Method != http.MethodPost {
		return true
	}
	if m == nil {
		return true
	}
	for _, l := range jsonrpc.Lists {
		if m.Method == l.Method {
			return true
		}
	}
	return false
}

// checkRoute refuses claims the policy may not decide on, and a user the
// route's policy refuses.
func (s *Step) checkRoute(r *http.Request, sc *request.Scope) error {
	p := s.Policy
	if p == nil {
		return nil
	}
	if !p.Fresh(sc.Identity) {
		return apierror.Challenge(s.Route.MetadataURL(r.URL.Path), "invalid_token",
			"the route's access policy decides on a sign-in within identity_provider.claims_max_age; authorize again")
	}
	d := p.Route(sc.Identity)
	s.count(d)
	if d.Allowed {
		return nil
	}
	s.denied(r, sc.Identity, "", "", d)
	return RouteDenied(sc.Identity, s.Route.Key())
}

// RouteDenied is the answer to a user the route's policy refuses.
func RouteDenied(id request.Identity, route string) *apierror.Error {
	return apierror.New(apierror.CodePolicyDenied,
		"You are signed in as %s, and the operator has not given you the MCP server at %s. Ask them for access, then start again from your MCP client.", Who(id), route)
}

// Who names a user on the refusal page: the email with the subject, or the
// subject.
func Who(id request.Identity) string {
	if id.Email != "" {
		return id.Email + " (" + id.Subject + ")"
	}
	return id.Subject
}

// read reads the message of a POST when the policy decides on messages, or
// when mirrored headers must be checked against it. Only the policy's
// reading refuses a body it cannot read with certainty; the header check
// alone lets such a body pass to the server, which refuses it itself.
func (s *Step) read(r *http.Request) (*jsonrpc.Message, error) {
	strict := s.Policy.InspectsMessages()
	mirrored := r.Header.Get(jsonrpc.MethodHeader) != "" || r.Header.Get(jsonrpc.NameHeader) != ""
	if r.Method != http.MethodPost || !strict && !mirrored {
		return nil, nil
	}
	if !strict && (r.ContentLength < 0 || r.ContentLength > MaxInspected || r.Header.Get("Content-Encoding") != "") {
		return nil, nil
	}
	m, err := s.inspect(r)
	var ne *jsonrpc.Error
	switch {
	case errors.As(err, &ne) && !strict:
		return nil, nil
	case err != nil:
		return nil, err
	}
	// The message comes back with the mismatch: its id is the answer's.
	return m, jsonrpc.CheckHeaders(r.Header, m)
}

// inspect reads r's body in full (it stays r's Body, read once) and parses
// its message.
func (s *Step) inspect(r *http.Request) (*jsonrpc.Message, error) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return nil, apierror.New(apierror.CodeNotInspectable,
			"The request body has Content-Encoding %q; on this route the proxy reads every request before forwarding it, so send it unencoded.", ce).
			WithStatus(http.StatusUnsupportedMediaType)
	}
	if r.ContentLength > MaxInspected {
		return nil, tooLargeToInspect()
	}
	b, err := readBody(r)
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, apierror.TooLarge(s.Route.MaxRequestBytes())
	case err != nil:
		return nil, apierror.Wrap(err, apierror.CodeInvalidRequest, "The request body could not be read.")
	case len(b) > MaxInspected:
		return nil, tooLargeToInspect()
	}
	r.Body, r.ContentLength = request.NewBody(b), int64(len(b))
	m, err := jsonrpc.Parse(b)
	if err != nil {
		return nil, apierror.Wrap(err, apierror.CodeNotInspectable,
			"The proxy cannot read this request with certainty, so it did not forward it: %s.", err.Error())
	}
	return m, nil
}

// readBody reads r's body, at most MaxInspected+1 bytes: in one allocation
// when its length is known.
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= MaxInspected {
		b := make([]byte, n)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(r.Body, MaxInspected+1))
}

func tooLargeToInspect() error {
	return apierror.New(apierror.CodeNotInspectable,
		"The request body is larger than the %d bytes the proxy reads to decide on it; MCP messages are far smaller.", MaxInspected).
		WithStatus(http.StatusRequestEntityTooLarge)
}

func (s *Step) count(d Decision) {
	if d.Allowed {
		s.Metrics.Policy(s.Route.Key(), metrics.PolicyAllowed)
	} else {
		s.Metrics.Policy(s.Route.Key(), metrics.PolicyDenied)
	}
}

// refuseMessage answers a refused message: a JSON-RPC error to a request
// (HTTP 200, as every JSON-RPC answer), 403 to a notification.
func (s *Step) refuseMessage(w http.ResponseWriter, r *http.Request, sc *request.Scope, m *jsonrpc.Message, d Decision) {
	name, _ := m.Named()
	if name == "" {
		name = m.Params.Ref.Name + m.Params.Ref.URI
	}
	s.denied(r, sc.Identity, m.Method, name, d)
	what := describe(m.Method, name)
	rid := apierror.RequestID(r.Context())
	if m.ID == nil {
		s.Responder.Write(w, r, apierror.New(apierror.CodePolicyDenied,
			"The operator's policy does not give %s %s on %s.", sc.Identity.Subject, what, s.Route.Key()))
		return
	}
	answer := struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      jsontext.Value `json:"id"`
		Error   rpcError       `json:"error"`
	}{"2.0", m.ID, rpcError{
		Code:    deniedCode,
		Message: "access denied: the operator's policy does not give " + sc.Identity.Subject + " " + what + " on " + s.Route.Key() + "; see the proxy's log for request " + rid,
		Data:    map[string]string{"error": string(apierror.CodePolicyDenied), "request_id": rid},
	}}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(answer)
}

// HeaderMismatchCode is the JSON-RPC error code of a request whose
// mirrored headers disagree with its body: HeaderMismatch, as the
// 2026-07-28 transport has servers answer it.
const HeaderMismatchCode = -32020

// deniedCode is the JSON-RPC error code of a refused request: invalid
// params, as MCP answers a tool it does not have (and as Pomerium answers a
// refused one).
const deniedCode = -32602

type rpcError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
}

// describe names what a message asks for, in a refusal.
func describe(method, name string) string {
	switch method {
	case "tools/call":
		return "the tool " + name
	case "prompts/get":
		return "the prompt " + name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return "the resource " + name
	case "completion/complete":
		return "completions of " + name
	}
	return "the method " + method
}

// denied logs, counts and audits a refusal, once.
func (s *Step) denied(r *http.Request, id request.Identity, method, name string, d Decision) {
	Denied(r, s.Log, s.Audit, id, method, name, d)
}

// Denied writes the one log line and audit record of a refusal.
func Denied(r *http.Request, log *slog.Logger, rec *audit.Recorder, id request.Identity, method, name string, d Decision) {
	attrs := []slog.Attr{event.PolicyDenied.Attr(), slog.String("user", id.Subject)}
	detail := map[string]string{"rule": d.Rule}
	if method != "" {
		attrs = append(attrs, slog.String("method", method), slog.String("name", name))
		detail["method"], detail["name"] = method, name
	}
	attrs = append(attrs, slog.String("rule", d.Rule), slog.String("request_id", apierror.RequestID(r.Context())))
	log.LogAttrs(r.Context(), slog.LevelInfo, "the access policy refused the request", attrs...)
	rec.Try(r.Context(), id.Subject, "", "policy_denied", "denied", detail)
}
