package config

import (
	"crypto"
	"net/url"
	"strings"
	"time"
)

// Route sends requests for one host to one remote MCP server.
type Route struct {
	// From is the URL your users' MCP clients connect to: https and a host,
	// without a path. The proxy answers for this host.
	From string `yaml:"from"`

	// To is the remote MCP server. Request paths are appended to it.
	To string `yaml:"to"`

	// MCP says the remote end speaks MCP and how the proxy authorizes to it.
	MCP *MCP `yaml:"mcp"`

	// Policy decides who may use the route and what behind it. Not set:
	// every user who can sign in at the identity provider may use all of
	// it.
	Policy *Policy `yaml:"policy"`

	// Set by provisioning, once the route is valid.
	from, to *url.URL
	key      string // hostname.Key of from
}

// MCP configures the MCP side of a route.
type MCP struct {
	// Server makes the route an MCP server route: the proxy authorizes its
	// users' MCP clients itself and acts as an OAuth client towards the
	// remote server. An empty block turns on auto-discovery of everything
	// the remote server needs.
	Server *MCPServer `yaml:"server"`
}

// MCPServer holds the options of an MCP server route. An empty block means
// full auto-discovery: the proxy learns everything from the remote server
// and registers with its Client ID Metadata Document.
type MCPServer struct {
	// UpstreamOAuth2 is a client registered for the proxy at the remote
	// authorization server. Omit it for auto-discovery.
	UpstreamOAuth2 *UpstreamOAuth2 `yaml:"upstream_oauth2"`

	// AuthorizationServerURL is the issuer of the remote authorization
	// server, used when the remote MCP server publishes no protected
	// resource metadata. Tokens are then requested for the remote server's
	// URL.
	AuthorizationServerURL string `yaml:"authorization_server_url"`

	// DynamicClientRegistration lets the proxy register the route at the
	// remote authorization server (RFC 7591) when that server does not
	// accept Client ID Metadata Documents. Default false.
	DynamicClientRegistration bool `yaml:"dynamic_client_registration"`

	// UpstreamTokenBinding decides whose remote token a request carries:
	// per_user (default: one per user, shared by their MCP clients),
	// per_session (one per MCP client authorization) or service_account
	// (one for the route, shared by everyone; needs audit.file).
	UpstreamTokenBinding string `yaml:"upstream_token_binding"`

	// ServiceAccount says where a service_account route's shared token
	// comes from.
	ServiceAccount *ServiceAccount `yaml:"service_account"`

	// Enterprise gets each user's remote token without a consent screen
	// (enterprise-managed authorization, SEP-990): the user's ID token
	// from their sign-in is exchanged at the identity provider for an
	// identity assertion (ID-JAG, RFC 8693), which the proxy presents at
	// the remote authorization server with the JWT bearer grant (RFC 7523)
	// as upstream_oauth2's client. An empty block uses the identity
	// provider's token endpoint and the proxy's client there.
	Enterprise *Enterprise `yaml:"enterprise"`

	// PassScopes sends the scopes the MCP client asked the proxy for on to
	// the remote authorization server, instead of the scopes the remote
	// server advertises. upstream_oauth2.scopes, when set, wins. Default
	// false.
	PassScopes bool `yaml:"pass_scopes"`

	// AllowedOrigins are the web origins (scheme://host[:port]) whose
	// browser-based MCP clients may call the route. Requests with another
	// Origin header are refused with 403. Requests without an Origin header
	// (MCP clients that are not web pages) are not affected. The route's
	// own origin is always allowed.
	AllowedOrigins []string `yaml:"allowed_origins"`

	// MaxRequestBytes bounds the body of a request to the remote server.
	// Default 4194304 (4 MiB).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`

	// UpstreamTimeout bounds the wait for the remote server to start
	// answering a request (its response headers), as a Go duration such as
	// 30s. A response that has started, such as a server-sent event stream,
	// is never cut. Default "2m".
	UpstreamTimeout string `yaml:"upstream_timeout"`
}

// DefaultUpstreamTimeout is upstream_timeout when it is not set.
const DefaultUpstreamTimeout = 2 * time.Minute

// Timeout returns the route's upstream timeout or its default.
func (s *MCPServer) Timeout() time.Duration {
	if d, err := time.ParseDuration(s.UpstreamTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultUpstreamTimeout
}

// BindingMode is a value of upstream_token_binding.
type BindingMode string

// Binding modes.
const (
	BindingPerUser        BindingMode = "per_user"
	BindingPerSession     BindingMode = "per_session"
	BindingServiceAccount BindingMode = "service_account"
)

// Binding returns the route's binding mode or its default.
func (s *MCPServer) Binding() BindingMode {
	if s.UpstreamTokenBinding == "" {
		return BindingPerUser
	}
	return BindingMode(s.UpstreamTokenBinding)
}

// ServiceAccount is the source of a service_account route's token.
type ServiceAccount struct {
	// Admin is the subject (at your identity provider) of the one user who
	// may consent at the remote server for everyone.
	Admin string `yaml:"admin"`

	// ClientCredentials gets the token with the client credentials grant,
	// as upstream_oauth2.client_id with its client_secret or
	// private_key_file, without a user.
	ClientCredentials bool `yaml:"client_credentials"`

	// WorkloadIdentity gets the token with a JWT the proxy's workload
	// already holds (such as a projected Kubernetes service account
	// token), presented with the JWT bearer grant (RFC 7523) and no client
	// secret.
	WorkloadIdentity *WorkloadIdentity `yaml:"workload_identity"`
}

// Source names where a service account's shared token comes from, for
// messages and the audit record's grant.
func (sa *ServiceAccount) Source() string {
	switch {
	case sa == nil:
		return ""
	case sa.ClientCredentials:
		return "client_credentials"
	case sa.WorkloadIdentity != nil:
		return "jwt_bearer"
	}
	return "authorization_code"
}

// WorkloadIdentity is a service account route's workload JWT.
type WorkloadIdentity struct {
	// TokenFile holds the workload's JWT, relative to the configuration
	// file. The proxy reads it each time it asks for a remote token, so a
	// token its issuer rewrites (the kubelet renews projected tokens) is
	// used from the next request on. Required.
	TokenFile string `yaml:"token_file"`

	// Set by provisioning, once the route is valid.
	path string
}

// Path is the token file's path, resolved against the configuration
// file's directory once the configuration is valid.
func (w *WorkloadIdentity) Path() string {
	if w.path == "" {
		return w.TokenFile
	}
	return w.path
}

// UpstreamOAuth2 is a pre-registered client at the remote authorization
// server.
type UpstreamOAuth2 struct {
	// ClientID is the client id the remote authorization server issued for
	// the proxy. Its redirect URI must be
	// https://<from host>/.mcp-proxy/upstream/callback.
	ClientID string `yaml:"client_id"`

	// ClientSecret makes the client confidential. Write it as ${NAME} to
	// read it from the environment. Empty: a public client.
	ClientSecret string `yaml:"client_secret"`

	// PrivateKeyFile makes the client confidential without a shared
	// secret: the proxy authenticates with client assertions signed with
	// this key (private_key_jwt, RFC 7523), whose public half the remote
	// authorization server holds. A PEM file with an EC P-256 key (ES256)
	// or an RSA key of at least 2048 bits (RS256), unencrypted, relative
	// to the configuration file. Not with client_secret.
	PrivateKeyFile string `yaml:"private_key_file"`

	// PrivateKeyID is the kid of the client assertions' header: the key's
	// id in the key set the remote authorization server has for the
	// client. Empty: no kid. Only with private_key_file.
	PrivateKeyID string `yaml:"private_key_id"`

	// Endpoint names the authorization server's endpoints directly. When
	// both are set, the proxy discovers nothing.
	Endpoint *Endpoint `yaml:"endpoint"`

	// Scopes to request, replacing whatever the remote server advertises.
	Scopes []string `yaml:"scopes"`

	// Audience is sent, space-separated, as the audience parameter of the
	// authorization, code exchange, refresh and client credentials requests,
	// for authorization servers that take the audience from it rather than
	// from RFC 8707 resource (Ory Hydra, Auth0). A deviation from the MCP
	// authorization specification; empty: not sent.
	Audience []string `yaml:"audience"`

	// OmitResource leaves RFC 8707 resource out of those requests, for
	// authorization servers that refuse it (Microsoft Entra ID). A deviation
	// from the MCP authorization specification. Default false.
	OmitResource bool `yaml:"omit_resource"`

	// DPoP says when the proxy asks for tokens bound to a key of its own
	// (RFC 9449): auto when the remote server asks for them, required
	// always (a token the remote authorization server does not bind is
	// refused), off never. Default "auto".
	DPoP DPoPMode `yaml:"dpop"`

	// Set by provisioning, once the route is valid.
	privateKey crypto.Signer
}

// PrivateKey is the key of private_key_file, once the configuration is
// valid; nil without one.
func (u *UpstreamOAuth2) PrivateKey() crypto.Signer {
	if u == nil {
		return nil
	}
	return u.privateKey
}

// DPoPMode is upstream_oauth2.dpop.
type DPoPMode string

// The values of upstream_oauth2.dpop.
const (
	DPoPAuto     DPoPMode = "auto"
	DPoPRequired DPoPMode = "required"
	DPoPOff      DPoPMode = "off"
)

// DPoPMode is the route's upstream_oauth2.dpop, auto when unset.
func (u *UpstreamOAuth2) DPoPMode() DPoPMode {
	if u == nil || u.DPoP == "" {
		return DPoPAuto
	}
	return u.DPoP
}

// Registered reports whether the block names a pre-registered client; a
// block with only audience, omit_resource or dpop does not.
func (u *UpstreamOAuth2) Registered() bool { return u != nil && u.ClientID != "" }

// Endpoint is a remote authorization server's endpoints.
type Endpoint struct {
	// AuthURL is the authorization endpoint.
	AuthURL string `yaml:"auth_url"`
	// TokenURL is the token endpoint.
	TokenURL string `yaml:"token_url"`
}

// DefaultMaxRequestBytes is max_request_bytes when it is not set.
const DefaultMaxRequestBytes = 4 << 20

// MaxRequestBytes returns the route's request size limit or its default.
func (r *Route) MaxRequestBytes() int64 {
	if r.MCP != nil && r.MCP.Server != nil && r.MCP.Server.MaxRequestBytes > 0 {
		return r.MCP.Server.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

// Server returns the route's MCP server options (never nil once valid).
func (r *Route) Server() *MCPServer {
	if r.MCP == nil || r.MCP.Server == nil {
		return &MCPServer{}
	}
	return r.MCP.Server
}

// FromURL returns the parsed From. It is set once the configuration is valid.
func (r *Route) FromURL() *url.URL { return r.from }

// ToURL returns the parsed To. It is set once the configuration is valid.
func (r *Route) ToURL() *url.URL { return r.to }

// Key returns the host the route answers for, as [hostname.Key] spells it:
// the route map, metrics, logs and stored records name the route by it.
func (r *Route) Key() string { return r.key }

// Origin returns the route's origin as MCP clients reach it,
// https://host[:port], without a default port.
func (r *Route) Origin() string { return r.from.Scheme + "://" + r.key }

// PathProtectedResource is where a host serves its protected resource
// metadata (RFC 9728 §3): the bare path describes the host's root, and the
// path of a resource follows it.
const PathProtectedResource = "/.well-known/oauth-protected-resource"

// MetadataURL is the URL of the proxy's protected resource metadata for a
// path on the route: what its 401 challenges name in resource_metadata.
func (r *Route) MetadataURL(path string) string {
	if path == "/" || path == "" {
		return r.Origin() + PathProtectedResource
	}
	return r.Origin() + PathProtectedResource + path
}

// UpstreamFor maps a URL on the route (a resource an MCP client names) to
// the remote server's URL for the same path: To with the path appended.
func (r *Route) UpstreamFor(downstream string) string {
	u := *r.to
	path := "/"
	if d, err := url.Parse(downstream); err == nil && d.Path != "" {
		path = d.Path
	}
	u.Path = strings.TrimSuffix(r.to.Path, "/") + path
	if u.Path != "/" {
		u.Path = strings.TrimSuffix(u.Path, "/")
	}
	if u.Path == "/" && r.to.Path == "" {
		u.Path = ""
	}
	return u.String()
}
