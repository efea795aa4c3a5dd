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

	// TLS is the certificate the proxy presents for its routes' hosts:
	// files, or certificates it obtains with ACME.
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

	// Tracing exports OpenTelemetry traces of the requests the proxy
	// serves. Off unless this block or the "OTEL_EXPORTER_OTLP_ENDPOINT"
	// variable names a receiver.
	Tracing Tracing `yaml:"tracing"`

	// AllowedClientIDDomains limits which MCP clients may connect: a client
	// whose client id is a metadata document URL must have its host in
	// this list. Entries are host names or "*.example.com" wildcards (which
	// match subdomains, not example.com itself). Empty: any https host that
	// resolves to a public address.
	AllowedClientIDDomains []string `yaml:"allowed_client_id_domains"`

	// DisableClientRegistration turns off dynamic client registration
	// (RFC 7591) at the proxy: MCP clients that cannot publish a metadata
	// document, such as mcp-remote, then cannot connect, and the proxy's
	// authorization server metadata has no registration_endpoint. Default
	// false: any MCP client may register itself; the user approves each
	// one by name, marked as not verified, before it reaches the remote
	// server. allowed_client_id_domains does not apply to registered
	// clients: set this too to admit only the listed ones.
	DisableClientRegistration bool `yaml:"disable_client_registration"`

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
	// to seal values in Redis too, and to key the hash that Redis key
	// names are made of (every replica needs the same file).
	KeyFile string `yaml:"key_file"`

	// RedisURL is the Redis server of the redis store, such as
	// redis://:${REDIS_PASSWORD}@redis.internal:6379/0. Several proxies
	// sharing it share tokens. Set this or redis_sentinel.
	RedisURL string `yaml:"redis_url"`

	// RedisSentinel is a Redis run the highly available way, a primary
	// with replicas watched by Redis Sentinel: the proxy asks the
	// Sentinels which server is the primary and follows a failover. Set
	// this or redis_url.
	RedisSentinel *RedisSentinel `yaml:"redis_sentinel"`

	// Prefix starts every Redis key. Default mcp-proxy.
	Prefix string `yaml:"prefix"`
}

// RedisSentinel names the Sentinels of the redis store and how to sign
// in to them and to the Redis servers they watch.
type RedisSentinel struct {
	// MasterName is the name the Sentinels watch the primary under, as
	// in their sentinel monitor lines.
	MasterName string `yaml:"master_name"`

	// Addresses are the Sentinels' host:port addresses, such as
	// sentinel-1.internal:26379. List all of them (three or more, so a
	// majority outlives one); the proxy asks the first that answers.
	Addresses []string `yaml:"addresses"`

	// Username is the Redis servers' ACL user, for servers with ACL users.
	Username string `yaml:"username"`

	// Password is the Redis servers' password (their requirepass, or the
	// username's), such as ${REDIS_PASSWORD}.
	Password string `yaml:"password"`

	// SentinelUsername is the Sentinels' own ACL user, for Sentinels with
	// ACL users.
	SentinelUsername string `yaml:"sentinel_username"`

	// SentinelPassword is the Sentinels' own password (their
	// requirepass), when they have one.
	SentinelPassword string `yaml:"sentinel_password"`

	// DB is the Redis database number. Default 0.
	DB int `yaml:"db"`
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

// TLS is where the certificate for the routes' hosts comes from: PEM
// files (cert_file and key_file), or an ACME certificate authority (acme).
type TLS struct {
	// CertFile is the PEM certificate chain, valid for every route's host.
	// A relative path is read from the configuration file's directory.
	CertFile string `yaml:"cert_file"`

	// KeyFile is the PEM private key of the certificate.
	KeyFile string `yaml:"key_file"`

	// ACME obtains a certificate for each route's host from an ACME
	// certificate authority (Let's Encrypt unless directory_url says
	// otherwise) and renews it before it expires, instead of cert_file and
	// key_file. Certificates, their keys and the ACME account are kept in
	// storage, so replicas on one Redis share them. Setting it agrees to
	// the CA's subscriber agreement.
	ACME *ACME `yaml:"acme"`
}

// ACME configures certificates from an ACME certificate authority (RFC
// 8555).
type ACME struct {
	// Email is the contact address of the proxy's ACME account: the CA
	// writes to it about problems with the certificates. Required.
	Email string `yaml:"email"`

	// DirectoryURL is the CA's ACME directory, such as Let's Encrypt's
	// staging directory https://acme-staging-v02.api.letsencrypt.org/directory
	// (untrusted certificates, generous rate limits) while you try a setup.
	// Default Let's Encrypt's production directory,
	// https://acme-v02.api.letsencrypt.org/directory.
	DirectoryURL string `yaml:"directory_url"`

	// CAFile is a PEM file of CA certificates to trust for the ACME
	// server's own HTTPS, for a private CA (step-ca, Pebble). Default: the
	// system's roots.
	CAFile string `yaml:"ca_file"`

	// Challenges are the ACME challenge types the proxy answers, from
	// tls-alpn-01 (answered on listen: the CA connects to port 443 of each
	// route's host) and http-01 (answered on http_listen: the CA connects
	// to port 80). Default: tls-alpn-01, and http-01 when http_listen is
	// set.
	Challenges []string `yaml:"challenges"`

	// HTTPListen is the address of a plain HTTP listener, such as ":80",
	// that answers http-01 challenges and redirects every other request to
	// https. Default: none (only tls-alpn-01). A reload cannot change it.
	HTTPListen string `yaml:"http_listen"`
}

// ACME challenge types (tls.acme.challenges).
const (
	ChallengeTLSALPN = "tls-alpn-01"
	ChallengeHTTP    = "http-01"
)

// DefaultACMEDirectory is tls.acme.directory_url when it is not set: Let's
// Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// Directory returns directory_url or its default.
func (a *ACME) Directory() string {
	if a.DirectoryURL == "" {
		return DefaultACMEDirectory
	}
	return a.DirectoryURL
}

// Answers reports whether the proxy answers the challenge type: the listed
// ones, or by default tls-alpn-01 and, with http_listen, http-01.
func (a *ACME) Answers(challenge string) bool {
	if len(a.Challenges) > 0 {
		return slices.Contains(a.Challenges, challenge)
	}
	return challenge == ChallengeTLSALPN || (challenge == ChallengeHTTP && a.HTTPListen != "")
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
	// Add the scope your provider needs for groups (Dex: groups).
	Scopes []string `yaml:"scopes"`

	// GroupsClaim names the claim that holds a user's groups, read from
	// the ID token or, when it lacks the claim, from the userinfo answer:
	// groups for Okta, Keycloak and Dex, roles for Entra ID's app roles.
	// Default groups.
	GroupsClaim string `yaml:"groups_claim"`

	// ClaimsMaxAge is how long, on a route with a policy, the proxy
	// decides on the claims of a user's sign-in (a Go duration, between 5m
	// and 8h); then the user signs in again, and a change at the provider
	// takes effect. Default 8h, the life of a sign-in.
	ClaimsMaxAge string `yaml:"claims_max_age"`
}

// Bounds of identity_provider.claims_max_age.
const (
	MinClaimsMaxAge     = 5 * time.Minute
	DefaultClaimsMaxAge = 8 * time.Hour
)

// DefaultGroupsClaim is identity_provider.groups_claim when it is not set.
const DefaultGroupsClaim = "groups"

// GroupsClaimName returns identity_provider.groups_claim or its default.
func (idp *IdentityProvider) GroupsClaimName() string {
	if idp.GroupsClaim == "" {
		return DefaultGroupsClaim
	}
	return idp.GroupsClaim
}

// ClaimsMaxAgeDuration returns identity_provider.claims_max_age or its
// default.
func (idp *IdentityProvider) ClaimsMaxAgeDuration() time.Duration {
	if d, err := time.ParseDuration(idp.ClaimsMaxAge); err == nil && d > 0 {
		return d
	}
	return DefaultClaimsMaxAge
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
	if t := c.TracingSettings(); t != nil {
		add(t.Endpoint.String())
	}
	for _, r := range c.Routes {
		add(r.From)
		add(r.To)
		s := r.Server()
		add(s.AuthorizationServerURL)
		if e := s.Enterprise; e != nil {
			add(e.TokenEndpoint)
		}
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
