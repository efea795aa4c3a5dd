// Package authserver is the proxy's OAuth 2.1 authorization server towards
// MCP clients, one per route host: its metadata (RFC 9728, RFC 8414), the
// authorize and token endpoints, dynamic client registration, the user's
// sign-in at the identity provider, consent to MCP clients, and the page
// where users see and remove their connections. Once a user has signed in
// and approved a client, it hands the authorization to the upstream leg
// (connect) and gets it back once, with the result. Every endpoint is a
// handler that returns its failure; the route's responder answers it.
package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/connect"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/policy"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
)

// Lifetimes of what the authorization server issues and keeps. Named here
// so the docs and the code say the same thing.
const (
	// FlowTTL bounds a pending authorization: sign-in, consent and the
	// remote authorization server's consent must finish within it.
	FlowTTL = connect.FlowTTL
	// CodeTTL is the life of a code issued to an MCP client.
	CodeTTL = 2 * time.Minute
	// AccessTokenTTL is the life of an access token issued to an MCP client.
	AccessTokenTTL = time.Hour
	// RefreshTokenTTL is the life of a refresh token issued to an MCP
	// client; each use replaces it.
	RefreshTokenTTL = 30 * 24 * time.Hour
)

// The authorization server's paths on every route host.
const (
	PathPRM         = config.PathProtectedResource
	PathASM         = "/.well-known/oauth-authorization-server"
	PathAuthorize   = "/.mcp-proxy/authorize"
	PathToken       = "/.mcp-proxy/token"
	PathConsent     = "/.mcp-proxy/consent"
	PathLoginCB     = "/.mcp-proxy/login/callback"
	PathConnections = "/.mcp-proxy/connections"
	PathDisconnect  = "/.mcp-proxy/connections/disconnect"
	loginCookie     = "__Host-mcp-proxy-login"
)

// Namespaces of the authorization server's records.
const (
	NSRequests store.Namespace = "requests"
	NSCodes    store.Namespace = "codes"
	NSRefresh  store.Namespace = "refresh"
	NSConsents store.Namespace = "consents"
)

// Options are what a route's authorization server works with.
type Options struct {
	Route *config.Route
	// AllowedClientIDDomains is the configuration's allowed_client_id_domains.
	AllowedClientIDDomains []string
	Backend                store.Backend
	Access                 *bearer.Tokens
	// Tokens are the route's upstream tokens, which the connections page
	// lists and revokes.
	Tokens *tokens.Source
	// Upstream is the upstream leg, to which the authorization is handed.
	Upstream *connect.Flow
	Sessions *login.Sessions
	// IDTokens keep the users' ID tokens for an enterprise route's
	// exchange; used only when the route is one.
	IDTokens *login.IDTokens
	// Policy is the route's access policy; nil: the route has none.
	Policy  *policy.Policy
	Clients *clientid.Resolver
	// Registry holds dynamically registered clients; nil: registration is
	// turned off.
	Registry *registration.Registry
	// RegistrationLimit is the registration rate limit, shared by routes.
	RegistrationLimit *registration.Limiter
	IdP               *login.Provider
	Metrics           *metrics.Metrics
	Audit             *audit.Recorder
	Log               *slog.Logger
	Now               func() time.Time
	Responder         *apierror.Responder
	// FormKey signs the consent and disconnect forms; replicas share it.
	FormKey []byte
}

// Server is one route's authorization server.
type Server struct {
	o       Options
	route   string // the route's key
	origin  string
	binding config.BindingMode
	// loginSeal seals the sign-ins in flight (login.go).
	loginSeal *store.Sealer
	requests  store.Records[AuthRequest]
	codes     store.Records[Code]
	refresh   store.Records[RefreshToken]
	consents  store.Records[Consent]
}

// New returns the authorization server of a route.
func New(o Options) *Server {
	b := o.Backend
	seal, err := loginSealer(o.FormKey)
	if err != nil {
		panic(err) // a 32-byte key from HKDF-SHA256 is always a valid AES key
	}
	return &Server{
		o: o, route: o.Route.Key(), origin: o.Route.Origin(), binding: o.Route.Server().Binding(),
		loginSeal: seal,
		requests:  store.Records[AuthRequest]{B: b, NS: NSRequests},
		codes:     store.Records[Code]{B: b, NS: NSCodes},
		refresh:   store.Records[RefreshToken]{B: b, NS: NSRefresh},
		consents:  store.Records[Consent]{B: b, NS: NSConsents},
	}
}

// Handler returns the handler of one of the server's paths, or nil when
// path is not one.
func (s *Server) Handler(path string) http.Handler {
	rs := s.o.Responder
	switch path {
	case PathASM:
		return rs.JSON(s.authorizationServerMetadata)
	case PathAuthorize:
		return rs.Pages(s.authorize)
	case PathToken:
		return rs.JSON(s.token)
	case PathRegister:
		return rs.JSON(s.register)
	case PathConsent:
		return rs.Pages(s.consent)
	case PathLoginCB:
		return rs.Pages(s.loginCallback)
	case PathConnections:
		return rs.JSON(s.connections)
	case PathDisconnect:
		return rs.JSON(s.disconnect)
	}
	if path == PathPRM || len(path) > len(PathPRM) && path[:len(PathPRM)+1] == PathPRM+"/" {
		return rs.JSON(s.protectedResourceMetadata)
	}
	return nil
}

// FormToken binds a form to a session and a purpose (a request id, or the
// disconnect form). The key is shared by replicas, so a form served by one
// is accepted by another.
func (s *Server) FormToken(sessionID, purpose string) string {
	m := hmac.New(sha256.New, s.o.FormKey)
	m.Write([]byte(sessionID + "\x00" + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) formTokenOK(sessionID, purpose, got string) bool {
	return hmac.Equal([]byte(s.FormToken(sessionID, purpose)), []byte(got))
}

// session returns the signed-in session of the browser, or nil.
func (s *Server) session(r *http.Request) (*login.Session, error) { return s.o.Sessions.Current(r) }

func (s *Server) consentKey(subject, clientID string) string {
	return s.route + "\x00" + subject + "\x00" + clientID
}

func (s *Server) logAttrs(ctx context.Context, attrs ...any) []any {
	return append(attrs, slog.String("request_id", apierror.RequestID(ctx)))
}

// storageError is the answer to a request whose store operation failed.
func storageError(err error) *apierror.Error { return apierror.Storage(err) }
