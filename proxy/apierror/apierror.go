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
)

// Code is a stable error code. Codes never change meaning once published.
type Code string

// The catalog. docs/troubleshooting.md lists each code with its meaning.
const (
	// CodeUnauthorized: the MCP client sent no token, or one the proxy did
	// not issue or that has expired. The client should run the OAuth flow.
	CodeUnauthorized Code = "unauthorized"
	// CodeUnknownHost: no route answers for the request's Host.
	CodeUnknownHost Code = "unknown_host"
	// CodeNotFound: the path is not one the proxy serves on this route.
	CodeNotFound Code = "not_found"
	// CodeUpstreamUnreachable: the remote MCP server could not be reached.
	CodeUpstreamUnreachable Code = "upstream_unreachable"
	// CodeUpstreamTimeout: the remote MCP server did not answer in time.
	CodeUpstreamTimeout Code = "upstream_timeout"
	// CodeDiscoveryFailed: the proxy could not learn how to authorize to
	// the remote MCP server.
	CodeDiscoveryFailed Code = "upstream_discovery_failed"
	// CodeUpstreamAuthorization: the remote authorization server refused or
	// failed the proxy's authorization or token request.
	CodeUpstreamAuthorization Code = "upstream_authorization_failed"
	// CodeInvalidRequest: a request to one of the proxy's own endpoints was
	// malformed.
	CodeInvalidRequest Code = "invalid_request"
	// CodeLoginFailed: signing in at the identity provider failed.
	CodeLoginFailed Code = "login_failed"
	// CodeInternal: a bug or an unexpected failure; the log has the cause.
	CodeInternal Code = "internal_error"
)

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

// New returns an Error with a formatted message.
func New(code Code, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with cause err.
func Wrap(err error, code Code, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...), Err: err}
}

// Body is the JSON body of every error response.
type Body struct {
	Error       Code   `json:"error"`
	Description string `json:"error_description"`
	RequestID   string `json:"request_id"`
}

// Write sends err as the response and logs it with the request id. Any
// error that is not an *Error is an internal error; its text is logged, not
// sent.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Status: http.StatusInternalServerError,
			Message: "the proxy failed unexpectedly; the log has the cause under this request id", Err: err}
	}
	id := RequestID(r.Context())
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("event", "request_failed"),
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
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	WriteBody(w, e.Status, Body{Error: e.Code, Description: e.Message, RequestID: id})
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
