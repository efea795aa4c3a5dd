// Package request is the request scope: the one value the request path
// puts in a request's context, in the habit of oauth2-proxy's request scope
// and the MCP Go SDK's TokenInfoFromContext. The bearer check creates it
// once the MCP client's token checks out; each later step (binding, the
// upstream token, forwarding) reads what the steps before it settled and
// fills in its own field. Nothing else of the request path travels in the
// context.
package request

import (
	"context"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Grant is what the proxy issued to one MCP client for one user: the
// downstream access and refresh tokens point at it.
type Grant struct {
	ID       string
	Route    string
	Subject  string
	ClientID string
	Resource string
	Scope    string
	// BindingKey names the upstream token this grant's requests use. It is
	// computed once, when the grant is made, so the request path needs no
	// work to find it. Empty: the remote server needs no authorization.
	BindingKey string
	// Upstream is the remote MCP endpoint the grant's resource maps to.
	Upstream string
	Created  time.Time
}

// Identity is the signed-in user a request acts for.
type Identity struct {
	// Subject is the identity provider's sub.
	Subject string
}

// Scope is what the request path knows about one request. A request is
// served by one goroutine at a time, so its steps fill it in without a
// lock.
type Scope struct {
	// Grant is the MCP client's grant; the bearer check sets it.
	Grant *Grant
	// Identity is the user the grant was issued to; the bearer check sets it.
	Identity Identity
	// BindingKey names the upstream token the request may carry: set by the
	// binding step once it has checked the grant's key against the route's
	// mode; "" when the remote server needs no authorization.
	BindingKey string
	// Token is the upstream token the request carries; the token step sets
	// it (nil for a remote server without OAuth).
	Token *upstream.Token
}

type ctxKey struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// From returns the scope [With] stored, or nil before the bearer check.
func From(ctx context.Context) *Scope {
	s, _ := ctx.Value(ctxKey{}).(*Scope)
	return s
}
