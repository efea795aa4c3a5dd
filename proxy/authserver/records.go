package authserver

import (
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// AuthRequest is a downstream authorization request (an MCP client asking
// the proxy for a code) while the user signs in, consents and the proxy
// gets the upstream token.
type AuthRequest struct {
	ID         string
	Route      string // the route's key
	ClientID   string
	ClientName string
	// SelfRegistered: the client registered itself (RFC 7591); nobody
	// vouches for its name.
	SelfRegistered bool
	RedirectURI    string
	State          string // the MCP client's state, returned as is
	CodeChallenge  string // S256
	Resource       string // the downstream resource (RFC 8707), on the route's host
	Scope          string
	// ClientAuth is the token endpoint authentication method the client's
	// document named (clientid.AuthNone or AuthPrivateKeyJWT); registered
	// clients are public (AuthNone).
	ClientAuth string
	// Upstream is the remote MCP endpoint that Resource maps to.
	Upstream string
	// BindingSession names this authorization in per_session binding keys.
	BindingSession string
	Created        time.Time
	Expires        time.Time
}

// LoginState is a sign-in at the identity provider in flight. It is not
// stored: it travels sealed in the browser's login cookie for its state.
type LoginState struct {
	Request  *AuthRequest `json:",omitempty"` // the authorization waiting for the sign-in
	ReturnTo string       `json:",omitempty"` // or a path on the route host, when none waits
	Verifier string       // PKCE
	Nonce    string
	Expires  time.Time
}

// Consent records that a user approved an MCP client on a route.
type Consent struct {
	Time time.Time
}

// Code is an authorization code issued to an MCP client, stored by hash.
type Code struct {
	Request AuthRequest
	Subject string
	// Identity is the user's sign-in the grant will carry.
	Identity *request.Identity `json:",omitempty"`
	// BindingKey names the upstream token the grant will use; empty when
	// the remote server needs no authorization.
	BindingKey string
	Expires    time.Time
}

// RefreshToken is a downstream refresh token, stored by hash. Each use
// replaces it with a new one.
type RefreshToken struct {
	Grant   *request.Grant
	Expires time.Time
	// ClientAuth is how the client authenticates (AuthRequest.ClientAuth).
	ClientAuth string
}
