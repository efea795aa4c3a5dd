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
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
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

	from, to *url.URL
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

// Binding modes.
const (
	BindingPerUser        = "per_user"
	BindingPerSession     = "per_session"
	BindingServiceAccount = "service_account"
)

// Binding returns the route's binding mode or its default.
func (s *MCPServer) Binding() string {
	if s.UpstreamTokenBinding == "" {
		return BindingPerUser
	}
	return s.UpstreamTokenBinding
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

// Host returns the lower-cased host (with port, if From names one) that the
// route answers for.
func (r *Route) Host() string { return strings.ToLower(r.from.Host) }

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

// NamedHosts returns the lower-case host names this configuration names:
// routes' from and to, the identity provider, configured authorization
// servers and endpoints. The proxy trusts them wherever they resolve.
func (c *Config) NamedHosts() []string {
	var out []string
	add := func(raw string) {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			h := strings.ToLower(u.Hostname())
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

// IDPScopes returns the sign-in scopes or their default.
func (c *Config) IDPScopes() []string {
	if len(c.IdentityProvider.Scopes) == 0 {
		return []string{"openid", "email", "profile"}
	}
	return c.IdentityProvider.Scopes
}

// LoadFile reads and validates the configuration file at path, which is
// relative to dir when it is not absolute (dir "" means the working
// directory). Errors name the file as path. Environment references are
// resolved with lookupEnv (os.LookupEnv when nil).
func LoadFile(dir, path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	full := path
	if dir != "" && !filepath.IsAbs(path) {
		full = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return load(path, filepath.Dir(full), data, lookupEnv)
}

// Load decodes and validates data, which came from the file name (used in
// error positions and to resolve relative paths).
func Load(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return load(name, filepath.Dir(name), data, lookupEnv)
}

func load(name, dir string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var cfg Config
	d := &decoder{file: name, lookupEnv: lookupEnv}
	root, err := d.parse(data)
	if err != nil {
		return nil, err
	}
	d.decode(root, &cfg)
	cfg.dir = dir
	d.hasAudit = cfg.Audit.File != ""
	validate(&cfg, d)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return &cfg, nil
}

// validate checks meaning once the shapes are decoded, adding errors to d.
func validate(c *Config, d *decoder) {
	root := d.root
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			d.errorf(d.pos("listen"), "listen", "%q is not a host:port address, such as :443", c.Listen)
		}
	}

	switch {
	case c.TLS.CertFile == "" && c.TLS.KeyFile == "":
		d.errorf(root, "tls", "missing; name the certificate and key the proxy serves, as tls.cert_file and tls.key_file")
	case c.TLS.CertFile == "":
		d.errorf(d.pos("tls"), "tls.cert_file", "missing; name the PEM certificate for the routes' hosts")
	case c.TLS.KeyFile == "":
		d.errorf(d.pos("tls"), "tls.key_file", "missing; name the PEM private key of tls.cert_file")
	default:
		for _, f := range []struct{ path, value string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
			if _, err := os.Stat(c.Path(f.value)); err != nil {
				d.errorf(d.pos(f.path), f.path, "cannot read %s: %v", f.value, errors.Unwrap(err))
			}
		}
	}

	idp := c.IdentityProvider
	if _, present := d.nodes["identity_provider"]; !present {
		d.errorf(root, "identity_provider", "missing; users sign in through an OpenID Connect provider: set issuer, client_id and client_secret")
	} else {
		if idp.Issuer == "" {
			d.errorf(d.pos("identity_provider"), "identity_provider.issuer", "missing; set the provider's issuer URL, such as https://idp.example.com")
		} else if _, msg := parseServiceURL(idp.Issuer); msg != "" {
			d.errorf(d.pos("identity_provider.issuer"), "identity_provider.issuer", "%s", msg)
		}
		if idp.ClientID == "" {
			d.errorf(d.pos("identity_provider"), "identity_provider.client_id", "missing; set the client id the provider gave the proxy")
		}
		if idp.ClientSecret == "" && !d.failed("identity_provider.client_secret") {
			d.errorf(d.pos("identity_provider"), "identity_provider.client_secret", "missing; set the client secret, for example as ${IDP_CLIENT_SECRET}")
		}
	}

	switch c.StorageType() {
	case StorageMemory, StorageFile:
		if c.Storage.RedisURL != "" || c.Storage.Prefix != "" {
			d.errorf(d.pos("storage"), "storage", "redis_url and prefix only apply to type: redis")
		}
	case StorageRedis:
		if c.Storage.RedisURL == "" && !d.failed("storage.redis_url") {
			d.errorf(d.pos("storage"), "storage.redis_url", "missing; the redis store needs the server's URL, such as redis://redis.internal:6379/0")
		} else if u, err := url.Parse(c.Storage.RedisURL); c.Storage.RedisURL != "" && (err != nil || (u.Scheme != "redis" && u.Scheme != "rediss")) {
			d.errorf(d.pos("storage.redis_url"), "storage.redis_url", "%q is not a redis:// or rediss:// URL", redactURL(c.Storage.RedisURL))
		}
		if c.Storage.Path != "" {
			d.errorf(d.pos("storage.path"), "storage.path", "only applies to type: file")
		}
	default:
		d.errorf(d.pos("storage.type"), "storage.type", "%q is not a store; use memory, file or redis", c.Storage.Type)
	}
	if a := c.Admin.Listen; a != "" && a != "off" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			d.errorf(d.pos("admin.listen"), "admin.listen", "%q is not a host:port address, such as 127.0.0.1:9464 (or off)", a)
		}
	}
	validateDomains(c.AllowedClientIDDomains, "allowed_client_id_domains", d)
	validateDomains(c.AllowedMetadataDomains, "allowed_metadata_domains", d)

	if len(c.Routes) == 0 {
		d.errorf(d.pos("routes"), "routes", "no routes; add one with from, to and mcp.server")
	}
	hosts := make(map[string]string)
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		at := d.pos(p)
		if r.From == "" {
			d.errorf(at, p+".from", "missing; set the URL your users' MCP clients connect to, such as https://mcp.example.com")
		} else if u, msg := parseFrom(r.From); msg != "" {
			d.errorf(d.pos(p+".from"), p+".from", "%s", msg)
		} else {
			r.from = u
			h := strings.ToLower(u.Host)
			if prev, dup := hosts[h]; dup {
				d.errorf(d.pos(p+".from"), p+".from", "host %s is already the from of %s; each route needs its own host", u.Host, prev)
			} else {
				hosts[h] = p
			}
		}
		if r.To == "" {
			d.errorf(at, p+".to", "missing; name the remote MCP server, such as https://remote-mcp.provider.com")
		} else if u, msg := parseServiceURL(r.To); msg != "" {
			d.errorf(d.pos(p+".to"), p+".to", "%s", msg)
		} else {
			r.to = u
		}
		if r.MCP != nil && r.MCP.Server != nil {
			validateServer(r.MCP.Server, p+".mcp.server", d)
		}
		switch {
		case r.MCP == nil && !d.failedUnder(p+".mcp"):
			d.errorf(at, p+".mcp", "missing; this proxy serves MCP routes: add mcp: {server: {}} for auto-discovery")
		case r.MCP != nil && r.MCP.Server == nil && !d.failedUnder(p+".mcp"):
			d.errorf(d.pos(p+".mcp"), p+".mcp.server", "missing; add server: {} for auto-discovery")
		}
	}
}

func validateServer(s *MCPServer, p string, d *decoder) {
	if u := s.UpstreamOAuth2; u != nil {
		up := p + ".upstream_oauth2"
		if u.ClientID == "" && !d.failed(up+".client_id") {
			d.errorf(d.pos(up), up+".client_id", "missing; set the client id the remote authorization server issued, or remove upstream_oauth2 for auto-discovery")
		}
		if e := u.Endpoint; e != nil {
			ep := up + ".endpoint"
			for _, f := range []struct{ name, value string }{{"auth_url", e.AuthURL}, {"token_url", e.TokenURL}} {
				switch {
				case f.value == "" && !d.failed(ep+"."+f.name):
					d.errorf(d.pos(ep), ep+"."+f.name, "missing; static endpoints need both auth_url and token_url")
				case f.value != "":
					if _, msg := parseServiceURL(f.value); msg != "" {
						d.errorf(d.pos(ep+"."+f.name), ep+"."+f.name, "%s", msg)
					}
				}
			}
		}
		for i, sc := range u.Scopes {
			if strings.TrimSpace(sc) == "" || strings.ContainsAny(sc, " \"\\") {
				sp := fmt.Sprintf("%s.scopes[%d]", up, i)
				d.errorf(d.pos(sp), sp, "%q is not a scope; write one scope per list entry", sc)
			}
		}
		if s.DynamicClientRegistration {
			d.errorf(d.pos(p+".dynamic_client_registration"), p+".dynamic_client_registration",
				"has no effect with upstream_oauth2.client_id: the proxy uses the registered client; remove one of them")
		}
	}
	bp := p + ".upstream_token_binding"
	switch s.UpstreamTokenBinding {
	case "", BindingPerUser, BindingPerSession:
		if s.ServiceAccount != nil {
			d.errorf(d.pos(p+".service_account"), p+".service_account", "only applies with upstream_token_binding: service_account")
		}
	case BindingServiceAccount:
		if !d.hasAudit {
			d.errorf(d.pos(bp), bp, "service_account shares one remote token among all users, so every use must be audited; set audit.file")
		}
		sa := s.ServiceAccount
		switch {
		case sa == nil || (sa.Admin == "" && !sa.ClientCredentials):
			d.errorf(d.pos(bp), p+".service_account", "missing; say where the shared token comes from: service_account.admin (a user who consents once for everyone) or service_account.client_credentials: true")
		case sa.Admin != "" && sa.ClientCredentials:
			d.errorf(d.pos(p+".service_account"), p+".service_account", "admin and client_credentials are two sources of the shared token; set one")
		case sa.ClientCredentials && (s.UpstreamOAuth2 == nil || s.UpstreamOAuth2.ClientSecret == ""):
			d.errorf(d.pos(p+".service_account.client_credentials"), p+".service_account.client_credentials", "needs upstream_oauth2.client_id and client_secret: the client credentials grant authenticates the proxy's registered client")
		}
	default:
		d.errorf(d.pos(bp), bp, "%q is not a binding mode; use per_user, per_session or service_account", s.UpstreamTokenBinding)
	}
	if s.AuthorizationServerURL != "" {
		if _, msg := parseServiceURL(s.AuthorizationServerURL); msg != "" {
			d.errorf(d.pos(p+".authorization_server_url"), p+".authorization_server_url", "%s", msg)
		}
	}
	for i, o := range s.AllowedOrigins {
		op := fmt.Sprintf("%s.allowed_origins[%d]", p, i)
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			d.errorf(d.pos(op), op, "%q is not an origin; write scheme://host[:port], such as https://app.example.com", o)
		}
	}
	if s.UpstreamTimeout != "" {
		if t, err := time.ParseDuration(s.UpstreamTimeout); err != nil || t <= 0 {
			tp := p + ".upstream_timeout"
			d.errorf(d.pos(tp), tp, "%q is not a positive duration such as 30s or 2m", s.UpstreamTimeout)
		}
	}
	if s.MaxRequestBytes < 0 {
		d.errorf(d.pos(p+".max_request_bytes"), p+".max_request_bytes", "%d is negative; omit it for the default of %d", s.MaxRequestBytes, DefaultMaxRequestBytes)
	}
}

func validateDomains(list []string, p string, d *decoder) {
	for i, h := range list {
		hp := fmt.Sprintf("%s[%d]", p, i)
		if msg := checkDomainPattern(h); msg != "" {
			d.errorf(d.pos(hp), hp, "%s", msg)
		}
	}
}

// checkDomainPattern checks an allowlist entry: a host name or *.suffix.
func checkDomainPattern(h string) string {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || strings.ContainsAny(name, "*/:@ ") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Sprintf("%q is not a host name or a *.example.com wildcard", h)
	}
	return ""
}

// DomainAllowed reports whether host matches one of the patterns.
func DomainAllowed(host string, patterns []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range patterns {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// parseFrom checks a route's from: an absolute https URL with a host and
// no path, query or fragment.
func parseFrom(s string) (*url.URL, string) {
	u, msg := parseServiceURL(s)
	if msg != "" {
		return nil, msg
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Sprintf("%q has a path or query; from names only the host, such as %s://%s", s, u.Scheme, u.Host)
	}
	u.Path = ""
	return u, ""
}

// parseServiceURL checks an absolute URL of a service: https, or plain
// http only when the host is loopback (everything then stays on one machine).
func parseServiceURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		hint := ""
		if !strings.Contains(s, "://") {
			hint = "; write it as https://" + s
		}
		return nil, fmt.Sprintf("%q is not an absolute URL%s", s, hint)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Sprintf("%q must not carry user information or a fragment", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Sprintf("%q uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])", s)
		}
	default:
		return nil, fmt.Sprintf("%q has scheme %q; use https", s, u.Scheme)
	}
	u.Host = strings.ToLower(u.Host)
	return u, ""
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
