// Package config defines the proxy's configuration file, decodes it strictly
// and validates it.
//
// The struct tree below is the single source of the configuration reference:
// every field's doc comment is its documentation, and the zero value of every
// field is its documented default. Decoding is strict: an unknown field is an
// error, never a silently ignored line, and every error names the file, line,
// column and field path, all errors at once.
package config

import (
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
)

// DefaultListen is the address `serve` listens on when listen is not set.
const DefaultListen = ":443"

// Config is the whole configuration file.
type Config struct {
	// Listen is the address the proxy serves its routes on, over HTTPS.
	// Default ":443".
	Listen string `yaml:"listen"`

	// TLS is the certificate the proxy presents for its routes' hosts.
	TLS TLS `yaml:"tls"`

	// IdentityProvider is the OpenID Connect provider your users sign in
	// with before the proxy acts for them.
	IdentityProvider IdentityProvider `yaml:"identity_provider"`

	// Routes are the remote MCP servers the proxy fronts, one per host.
	Routes []Route `yaml:"routes"`

	// Storage is where the proxy keeps its tokens and sessions.
	Storage Storage `yaml:"storage"`

	// Audit is the tamper-evident audit log. Required by service_account
	// routes.
	Audit Audit `yaml:"audit"`

	// Admin is the listener for metrics and health checks.
	Admin Admin `yaml:"admin"`

	// AllowedClientIDDomains limits which MCP clients may connect: a client
	// whose client id is a metadata document URL must have its host in
	// this list. Entries are host names or "*.example.com" wildcards (which
	// match subdomains, not example.com itself). Empty: any https host that
	// resolves to a public address.
	AllowedClientIDDomains []string `yaml:"allowed_client_id_domains"`

	// AllowedMetadataDomains limits where the proxy goes when a remote
	// server names a URL: the resource_metadata of a challenge, the
	// authorization_servers of protected resource metadata, the endpoints of
	// authorization server metadata. Same syntax as
	// allowed_client_id_domains. Hosts named in this file are always
	// allowed. Empty: any host that resolves to a public address.
	AllowedMetadataDomains []string `yaml:"allowed_metadata_domains"`

	// dir is the directory of the configuration file; relative paths are
	// read from it.
	dir string
}

// Storage selects the token store.
type Storage struct {
	// Type is memory, file or redis. Default file: tokens survive a
	// restart. memory forgets everything when the process stops.
	Type string `yaml:"type"`

	// Path is the file store's database file. Default mcp-proxy.db beside
	// the configuration file.
	Path string `yaml:"path"`

	// KeyFile holds the 32-byte key that seals stored records
	// (AES-256-GCM). The file store creates it with mode 0600 on first
	// start (default mcp-proxy.key beside the configuration file) and
	// refuses one that others can read. With redis it is optional: set it
	// to seal values in Redis too.
	KeyFile string `yaml:"key_file"`

	// RedisURL is the Redis server of the redis store, such as
	// redis://:${REDIS_PASSWORD}@redis.internal:6379/0. Several proxies
	// sharing it share tokens.
	RedisURL string `yaml:"redis_url"`

	// Prefix starts every Redis key. Default mcp-proxy.
	Prefix string `yaml:"prefix"`
}

// Audit configures the audit log.
type Audit struct {
	// File is the audit log: JSON lines, each chained to the previous by
	// hash. Empty: no audit log.
	File string `yaml:"file"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is the address of /metrics, /healthz and /readyz. Default
	// 127.0.0.1:9464; "off" turns the listener off.
	Listen string `yaml:"listen"`
}

// Storage types.
const (
	StorageMemory = "memory"
	StorageFile   = "file"
	StorageRedis  = "redis"
)

// DefaultAdminListen is admin.listen when it is not set.
const DefaultAdminListen = "127.0.0.1:9464"

// StorageType returns storage.type or its default.
func (c *Config) StorageType() string {
	if c.Storage.Type == "" {
		return StorageFile
	}
	return c.Storage.Type
}

// StoragePath returns the file store's path, resolved.
func (c *Config) StoragePath() string {
	if c.Storage.Path == "" {
		return c.Path("mcp-proxy.db")
	}
	return c.Path(c.Storage.Path)
}

// StorageKeyFile returns the key file, resolved; "" for redis without one.
func (c *Config) StorageKeyFile() string {
	switch {
	case c.Storage.KeyFile != "":
		return c.Path(c.Storage.KeyFile)
	case c.StorageType() == StorageFile:
		return c.Path("mcp-proxy.key")
	}
	return ""
}

// AdminListen returns admin.listen or its default; "" when it is off.
func (c *Config) AdminListen() string {
	switch c.Admin.Listen {
	case "":
		return DefaultAdminListen
	case "off":
		return ""
	}
	return c.Admin.Listen
}

// TLS names a certificate and its key, as PEM files.
type TLS struct {
	// CertFile is the PEM certificate chain, valid for every route's host.
	// A relative path is read from the configuration file's directory.
	CertFile string `yaml:"cert_file"`

	// KeyFile is the PEM private key of the certificate.
	KeyFile string `yaml:"key_file"`
}

// IdentityProvider configures user sign-in with OpenID Connect.
type IdentityProvider struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration".
	Issuer string `yaml:"issuer"`

	// ClientID is the proxy's client id at the provider.
	ClientID string `yaml:"client_id"`

	// ClientSecret is the proxy's client secret at the provider. Write it as
	// ${NAME} to read it from the environment.
	ClientSecret string `yaml:"client_secret"`

	// Scopes are requested at sign-in. Default: openid, email, profile.
	Scopes []string `yaml:"scopes"`
}

// Route sends requests for one host to one remote MCP server.
type Route struct {
	// From is the URL your users' MCP clients connect to: https and a host,
	// without a path. The proxy answers for this host.
	From string `yaml:"from"`

	// To is the remote MCP server. Request paths are appended to it.
	To string `yaml:"to"`

	// MCP says the remote end speaks MCP and how the proxy authorizes to it.
	MCP *MCP `yaml:"mcp"`

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
	// as upstream_oauth2.client_id with its client_secret, without a user.
	ClientCredentials bool `yaml:"client_credentials"`
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

	// Endpoint names the authorization server's endpoints directly. When
	// both are set, the proxy discovers nothing.
	Endpoint *Endpoint `yaml:"endpoint"`

	// Scopes to request, replacing whatever the remote server advertises.
	Scopes []string `yaml:"scopes"`
}

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

// ListenAddr returns Listen or its default.
func (c *Config) ListenAddr() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

// Path resolves a path named in the configuration against the directory of
// the configuration file.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// NamedHosts returns the hosts this configuration names, as host:port
// (the URL's port, else its scheme's default): routes' from and to, the
// identity provider, configured authorization servers and endpoints. The
// proxy trusts them wherever they resolve, on those ports.
func (c *Config) NamedHosts() []string {
	var out []string
	add := func(raw string) {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			port := u.Port()
			if port == "" {
				port = map[string]string{"http": "80"}[u.Scheme]
			}
			if port == "" {
				port = "443"
			}
			h := net.JoinHostPort(hostname.Name(u.Host), port)
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	add(c.IdentityProvider.Issuer)
	for _, r := range c.Routes {
		add(r.From)
		add(r.To)
		s := r.Server()
		add(s.AuthorizationServerURL)
		if u := s.UpstreamOAuth2; u != nil && u.Endpoint != nil {
			add(u.Endpoint.AuthURL)
			add(u.Endpoint.TokenURL)
		}
	}
	return out
}

// NamedHostNames returns the names of NamedHosts, without ports.
func (c *Config) NamedHostNames() []string {
	var out []string
	for _, h := range c.NamedHosts() {
		name, _, _ := net.SplitHostPort(h)
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// IDPScopes returns the sign-in scopes or their default.
func (c *Config) IDPScopes() []string {
	if len(c.IdentityProvider.Scopes) == 0 {
		return []string{"openid", "email", "profile"}
	}
	return c.IdentityProvider.Scopes
}
