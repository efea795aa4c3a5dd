package store

import (
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Session is a user signed in through the identity provider, in one
// browser, on one route host.
type Session struct {
	ID      string
	Subject string // the identity provider's sub
	Email   string
	Name    string
	Expires time.Time
}

// AuthRequest is a downstream authorization request (an MCP client asking
// the proxy for a code) while the user signs in, consents and the proxy
// gets the upstream token.
type AuthRequest struct {
	ID            string
	Route         string // the route's host
	ClientID      string
	ClientName    string
	RedirectURI   string
	State         string // the MCP client's state, returned as is
	CodeChallenge string // S256
	Resource      string // the downstream resource (RFC 8707), on the route's host
	Scope         string
	// Upstream is the remote MCP endpoint that Resource maps to.
	Upstream string
	// BindingSession names this authorization in per_session binding keys.
	BindingSession string
	Created        time.Time
	Expires        time.Time
}

// LoginState is a sign-in at the identity provider in flight, stored under
// the hash of its state.
type LoginState struct {
	RequestID string // the AuthRequest waiting for the sign-in
	ReturnTo  string // or a path on the route host, when none waits
	Verifier  string // PKCE
	Nonce     string
	Binding   string // hash of the browser's login cookie
}

// Consent records that a user approved an MCP client on a route.
type Consent struct {
	Time time.Time
}

// Registration is a client the proxy registered dynamically (RFC 7591) for
// one route at one authorization server; every user of the route shares it.
type Registration struct {
	ClientID     string
	Secret       string
	SecretInBody bool
}

// Code is an authorization code issued to an MCP client, stored by hash.
type Code struct {
	Request AuthRequest
	Subject string
	// BindingKey names the upstream token the grant will use; empty when
	// the remote server needs no authorization.
	BindingKey string
	Expires    time.Time
}

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
	// work to find it.
	BindingKey string
	// Upstream is the remote MCP endpoint the grant's resource maps to.
	Upstream string
	Created  time.Time
}

// AccessToken is a downstream access token, stored by hash.
type AccessToken struct {
	Grant   *Grant
	Expires time.Time
}

// RefreshToken is a downstream refresh token, stored by hash. Each use
// replaces it with a new one.
type RefreshToken struct {
	Grant   *Grant
	Expires time.Time
}

// PendingUpstream is an upstream authorization in flight, keyed by its
// state: it ties the remote authorization server's callback to the user and
// to the downstream request that is waiting for it.
type PendingUpstream struct {
	State       string
	Client      string // the MCP client waiting for this consent
	Route       string
	Subject     string
	RequestID   string // the AuthRequest waiting for this consent
	BindingKey  string
	Upstream    string
	Verifier    string // PKCE
	Grant       upstream.Grant
	RedirectURL string
	Expires     time.Time
}

// UpstreamToken is a token from a remote authorization server, with what
// is needed to refresh it.
type UpstreamToken struct {
	Key          string
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero: the server did not say
	Grant        upstream.Grant
	Subject      string // the user the token was acquired for
	Client       string // the MCP client whose authorization acquired it
	Acquired     time.Time
	// Scopes were granted (the token response's scope, else those asked for).
	Scopes []string
	// NeedScopes are the scopes the remote server asked for in a 403
	// insufficient_scope challenge; the next authorization asks for them.
	NeedScopes []string
	// StepUps counts insufficient_scope challenges since the last answer
	// that was not one; it bounds the step-up loop.
	StepUps int
}
