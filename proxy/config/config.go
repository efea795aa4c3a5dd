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
	"strings"
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

	// dir is the directory of the configuration file; relative paths are
	// read from it.
	dir string
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

// MCPServer holds the options of an MCP server route. It has none yet: an
// empty block means full auto-discovery.
type MCPServer struct{}

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
		switch {
		case r.MCP == nil && !d.failedUnder(p+".mcp"):
			d.errorf(at, p+".mcp", "missing; this proxy serves MCP routes: add mcp: {server: {}} for auto-discovery")
		case r.MCP != nil && r.MCP.Server == nil && !d.failedUnder(p+".mcp"):
			d.errorf(d.pos(p+".mcp"), p+".mcp.server", "missing; add server: {} for auto-discovery")
		}
	}
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
