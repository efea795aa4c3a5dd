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

	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
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
	// Identity is the user as the identity provider described them when
	// the grant was made; its Subject is Subject. Grants made before the
	// proxy kept claims have none.
	Identity *Identity `json:",omitempty"`
}

// User returns the identity of the grant's user: its Identity, or the
// subject alone.
func (g *Grant) User() Identity {
	if g.Identity != nil && g.Identity.Subject == g.Subject {
		return *g.Identity
	}
	return Identity{Subject: g.Subject}
}

// Identity is the signed-in user a request acts for, as the identity
// provider described them at sign-in.
type Identity struct {
	// Subject is the identity provider's sub.
	Subject string
	Email   string `json:",omitempty"`
	// EmailVerified is the provider's email_verified: an email counts for
	// a policy only when it is true.
	EmailVerified bool     `json:",omitempty"`
	Name          string   `json:",omitempty"`
	Groups        []string `json:",omitempty"`
	// Claims are the ID token's claims (with the groups claim from
	// userinfo when the ID token lacks it).
	Claims map[string]any `json:",omitempty"`
	// SignedIn is when the provider gave these claims.
	SignedIn time.Time `json:",omitzero"`
	// Source names the sign-in settings the claims were obtained under
	// (issuer, scopes, groups claim); claims from other settings are not
	// used by a policy.
	Source string `json:",omitempty"`
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
	// Message is the JSON-RPC message of the request, when the policy step
	// read it (on a route with rules over tools, prompts, resources or
	// methods).
	Message *jsonrpc.Message
	// Visible decides which items of list answers the user may see; nil:
	// all. The policy step sets it; forwarding filters answers with it.
	Visible jsonrpc.Keep
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
