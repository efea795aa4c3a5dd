// Package apierror is the proxy's error catalog and the one place that turns
// an error into an HTTP response.
//
// Every error a client or an operator can see has a stable code, an HTTP
// status and a message that says what was wrong and what to do. The response
// carries the request id (also in the X-Request-Id header), and the log line
// written for it carries the same id, so an operator can go from what a user
// reports to the log in one search.
package apierror

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
)

// Code is a stable error code. Codes never change meaning once published.
type Code string

// The catalog. Every code is listed by Catalog, and docs/troubleshooting.md
// carries the same table (a test keeps them equal).
const (
	CodeUnauthorized             Code = "unauthorized"
	CodeUnknownHost              Code = "unknown_host"
	CodeNotFound                 Code = "not_found"
	CodeMethodNotAllowed         Code = "method_not_allowed"
	CodeOriginNotAllowed         Code = "origin_not_allowed"
	CodeRequestTooLarge          Code = "request_too_large"
	CodePolicyDenied             Code = "policy_denied"
	CodeHeaderMismatch           Code = "mcp_header_mismatch"
	CodeNotInspectable           Code = "request_not_inspectable"
	CodeInvalidRequest           Code = "invalid_request"
	CodeInvalidClient            Code = "invalid_client"
	CodeClientNotAllowed         Code = "client_not_allowed"
	CodeInvalidRedirectURI       Code = "invalid_redirect_uri"
	CodeInvalidClientMetadata    Code = "invalid_client_metadata"
	CodeRegistrationDisabled     Code = "registration_disabled"
	CodeRegistrationRateLimited  Code = "registration_rate_limited"
	CodeRegistrationLimitReached Code = "registration_limit_reached"
	CodeLoginFailed              Code = "login_failed"
	CodeStateInvalid             Code = "authorization_state_invalid"
	CodeWrongUser                Code = "authorization_wrong_user"
	CodeIssuerMismatch           Code = "authorization_issuer_mismatch"
	CodeDiscoveryFailed          Code = "upstream_discovery_failed"
	CodeRegistrationUnavailable  Code = "upstream_registration_unavailable"
	CodeUpstreamAuthorization    Code = "upstream_authorization_failed"
	CodeASUnreachable            Code = "authorization_server_unreachable"
	CodeInsufficientScope        Code = "insufficient_scope"
	CodeScopeExhausted           Code = "upstream_scope_exhausted"
	CodeDPoPNonce                Code = "upstream_dpop_nonce"
	CodeServiceAccountMissing    Code = "service_account_not_connected"
	CodeStorageUnavailable       Code = "storage_unavailable"
	CodeUpstreamUnreachable      Code = "upstream_unreachable"
	CodeUpstreamTimeout          Code = "upstream_timeout"
	CodeInternal                 Code = "internal_error"
)

// Entry describes one code of the catalog.
type Entry struct {
	Code    Code
	Status  int // the HTTP status of the code
	Meaning string
	// Also lists the other statuses the code may answer with (the meaning
	// says when); an error of the code with any other status answers Status.
	Also []int
}

// Catalog lists every error code with its meaning, in the order of the
// docs' table.
func Catalog() []Entry {
	return []Entry{
		{CodeUnauthorized, 401, "The MCP client sent no token, or one the proxy did not issue or that expired, or the remote server's authorization for the user is gone. The client runs the OAuth flow that the WWW-Authenticate header points to.", nil},
		{CodeUnknownHost, 404, "No route answers for the request's Host. Check the from of your routes.", nil},
		{CodeNotFound, 404, "The path under /.mcp-proxy/ is not an endpoint of the proxy.", nil},
		{CodeMethodNotAllowed, 405, "The proxy endpoint does not take that HTTP method.", nil},
		{CodeOriginNotAllowed, 403, "A web page from another origin called the route. Add its origin to mcp.server.allowed_origins if it is a client you trust.", nil},
		{CodeRequestTooLarge, 413, "The request body is larger than mcp.server.max_request_bytes.", nil},
		{CodePolicyDenied, 403, "The route's access policy does not give the signed-in user this server, or (for a notification) this method; the log line with the request id names the rule. A refused tool, prompt, resource or method of a request is a JSON-RPC error instead (see Access Policy).", nil},
		{CodeHeaderMismatch, 400, "The Mcp-Method or Mcp-Name header of a request disagrees with its body; the transport makes intermediaries refuse it.", nil},
		{CodeNotInspectable, 400, "On a route with rules over tools, prompts, resources or methods, a request body the proxy cannot read with certainty: a batch, a member twice, not JSON; 413 over 1 MiB, 415 with a Content-Encoding.", []int{413, 415}},
		{CodeInvalidRequest, 400, "A request to the proxy's own endpoints was malformed, or a flow expired; start again from the MCP client. 403 when a form did not come from the signed-in session.", []int{403}},
		{CodeInvalidClient, 400, "The MCP client's client id or metadata document cannot be used; the message says why.", nil},
		{CodeClientNotAllowed, 403, "The MCP client's client id host is not in allowed_client_id_domains.", nil},
		{CodeInvalidRedirectURI, 400, "A dynamic client registration (RFC 7591) named a redirect URI the proxy does not accept for the client's application_type; the message names it and the rule.", nil},
		{CodeInvalidClientMetadata, 400, "A dynamic client registration was refused for a field other than a redirect URI (such as a token_endpoint_auth_method other than none); the message names the field. 413 for a request over 16384 bytes.", []int{413}},
		{CodeRegistrationDisabled, 404, "Dynamic client registration is turned off (disable_client_registration); the MCP client needs a Client ID Metadata Document.", nil},
		{CodeRegistrationRateLimited, 429, "Too many dynamic client registrations from one address or in total; Retry-After says when to try again.", nil},
		{CodeRegistrationLimitReached, 503, "The proxy holds the most dynamic client registrations it keeps; unused ones expire after 24 hours.", nil},
		{CodeLoginFailed, 502, "Signing in at the identity provider failed or could not start; the message says which. 400 for an unknown or foreign sign-in, 403 when the identity provider refused.", []int{400, 403}},
		{CodeStateInvalid, 400, "An answer from the remote authorization server has an unknown, used or expired state: a replayed or stale link.", nil},
		{CodeWrongUser, 403, "An answer from the remote authorization server arrived in the browser of another user or of no signed-in user.", nil},
		{CodeIssuerMismatch, 400, "An answer from the remote authorization server names another issuer than the one the proxy asked (RFC 9207): it is refused.", nil},
		{CodeDiscoveryFailed, 502, "The proxy could not learn how to authorize to the remote MCP server; the message names the step and what to set.", nil},
		{CodeRegistrationUnavailable, 502, "The remote authorization server accepts no registration this route allows; pre-register the proxy or allow dynamic registration.", nil},
		{CodeUpstreamAuthorization, 502, "The remote authorization server refused the proxy's authorization or code exchange, or the user denied consent there (403).", []int{403}},
		{CodeASUnreachable, 502, "The remote authorization server could not be reached; a stored token is kept.", nil},
		{CodeInsufficientScope, 403, "The remote MCP server needs more scope than the user consented to; the MCP client authorizes again and the user is asked for it.", nil},
		{CodeScopeExhausted, 403, "The remote MCP server kept asking for more scope after the proxy asked the user several times; the remote server or its authorization server is misconfigured.", nil},
		{CodeDPoPNonce, 502, "The remote MCP server refused the proxy's DPoP proof for want of a fresh nonce again after the proxy sent the nonce it asked for; the token is kept. Try again; if it repeats, the remote server does not accept its own nonces.", nil},
		{CodeServiceAccountMissing, 503, "A service_account route has no shared token yet, and the user is not its administrator; the administrator connects once.", nil},
		{CodeStorageUnavailable, 503, "The token store (file or Redis) cannot be reached; nothing was changed.", nil},
		{CodeUpstreamUnreachable, 502, "The remote MCP server could not be reached.", nil},
		{CodeUpstreamTimeout, 504, "The remote MCP server did not start answering in time.", nil},
		{CodeInternal, 500, "An unexpected failure; the log line with the request id has the cause.", nil},
	}
}

// Error is an error with its place in the catalog.
type Error struct {
	Code   Code
	Status int
	// Message says what went wrong and what to do, for the client and the
	// operator. It never contains a secret.
	Message string
	// Err is the underlying cause, logged but not sent to the client.
	Err error
	// Header is added to the response (for example WWW-Authenticate).
	Header http.Header
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with a formatted message, answered with the
// catalog's status for code.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Status: StatusOf(code, 0), Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with cause err, answered with the catalog's status
// for code.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Status: StatusOf(code, 0), Message: fmt.Sprintf(format, args...), Err: err}
}

// WithStatus answers e with status, which must be one of the other
// statuses the catalog lists for its code (Entry.Also); any other status is
// ignored and the catalog's own stands. A test reads every call and fails
// on a status the catalog does not list.
func (e *Error) WithStatus(status int) *Error {
	e.Status = StatusOf(e.Code, status)
	return e
}

// StatusOf returns the status an error of code answers with: status when
// the catalog allows it for the code, else the catalog's status.
func StatusOf(code Code, status int) int {
	for _, e := range catalogIndex() {
		if e.Code != code {
			continue
		}
		if status == e.Status || slices.Contains(e.Also, status) {
			return status
		}
		return e.Status
	}
	return http.StatusInternalServerError
}

var catalogIndex = sync.OnceValue(Catalog)

// Body is the JSON body of every error response.
type Body struct {
	Error       Code   `json:"error"`
	Description string `json:"error_description"`
	RequestID   string `json:"request_id"`
}

// Write sends err as a JSON response and logs it with the request id. Any
// error that is not an *Error is an internal error; its text is logged, not
// sent.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := logged(r, log, err)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	WriteBody(w, e.Status, Body{Error: e.Code, Description: e.Message, RequestID: RequestID(r.Context())})
}

// As returns err as an *Error of the catalog: itself, or an internal error
// whose cause it is.
func As(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Status: http.StatusInternalServerError,
			Message: "the proxy failed unexpectedly; the log has the cause under this request id", Err: err}
	}
	return e
}

// logged writes the one log line of a failed request and returns its
// catalog error with the catalog's status.
func logged(r *http.Request, log *slog.Logger, err error) *Error {
	e := As(err)
	e.Status = StatusOf(e.Code, e.Status)
	id := RequestID(r.Context())
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		event.RequestFailed.Attr(),
		slog.String("error_code", string(e.Code)),
		slog.Int("status", e.Status),
		slog.String("request_id", id),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	log.LogAttrs(r.Context(), level, e.Message, attrs...)
	tracing.SetError(r.Context(), string(e.Code))
	return e
}

// WriteBody writes a JSON error body.
func WriteBody(w http.ResponseWriter, status int, b Body) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

type ctxKey struct{}

// RequestIDHeader carries the request id on every response.
const RequestIDHeader = "X-Request-Id"

// WithRequestID gives every request an id, exposes it in the response
// header and stores it in the request context.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewRequestID()
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// NewRequestID returns 16 random hex digits.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID returns the id stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithHeader adds a header to e's answer (a challenge's WWW-Authenticate).
func (e *Error) WithHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = make(http.Header)
	}
	e.Header.Add(key, value)
	return e
}
