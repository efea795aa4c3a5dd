package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
)

// validate checks meaning once the shapes are decoded, adding errors to d,
// and provisions what the proxy derives from the file (parsed URLs, host
// keys) as it goes.
func validate(c *Config, d *decoder) {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			d.errorf(d.pos("listen"), "listen", "%q is not a host:port address, such as :443", c.Listen)
		}
	}

	c.TLS.validate(c, d)
	c.IdentityProvider.validate(d)
	c.Storage.validate(c, d)
	if a := c.Admin.Listen; a != "" && a != "off" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			d.errorf(d.pos("admin.listen"), "admin.listen", "%q is not a host:port address, such as 127.0.0.1:9464 (or off)", a)
		}
	}
	c.Tracing.validate(d)
	validateDomains(c.AllowedClientIDDomains, "allowed_client_id_domains", d)
	validateDomains(c.AllowedMetadataDomains, "allowed_metadata_domains", d)

	if len(c.Routes) == 0 {
		d.errorf(d.pos("routes"), "routes", "no routes; add one with from, to and mcp.server")
	}
	hosts := make(map[string]string) // hostname.Key → the first route's path and position
	for i := range c.Routes {
		c.Routes[i].validate(fmt.Sprintf("routes[%d]", i), hosts, d)
	}
}

func (t *TLS) validate(c *Config, d *decoder) {
	root := d.root
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
}

func (idp *IdentityProvider) validate(d *decoder) {
	if _, present := d.nodes["identity_provider"]; !present {
		d.errorf(d.root, "identity_provider", "missing; users sign in through an OpenID Connect provider: set issuer, client_id and client_secret")
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
		if a := idp.ClaimsMaxAge; a != "" {
			if age, err := time.ParseDuration(a); err != nil || age < MinClaimsMaxAge || age > DefaultClaimsMaxAge {
				d.errorf(d.pos("identity_provider.claims_max_age"), "identity_provider.claims_max_age",
					"%q is not a duration between %s and %s, such as 1h", a, MinClaimsMaxAge, DefaultClaimsMaxAge)
			}
		}
	}
}

func (s *Storage) validate(c *Config, d *decoder) {
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
}

// validate checks a route and provisions its parsed URLs and host key;
// hosts maps the host keys of the routes before it to their positions.
func (r *Route) validate(p string, hosts map[string]string, d *decoder) {
	at := d.pos(p)
	if r.From == "" {
		d.errorf(at, p+".from", "missing; set the URL your users' MCP clients connect to, such as https://mcp.example.com")
	} else if u, msg := parseFrom(r.From); msg != "" {
		d.errorf(d.pos(p+".from"), p+".from", "%s", msg)
	} else {
		r.from, r.key = u, hostname.Key(u.Scheme, u.Host)
		at := d.pos(p + ".from")
		if prev, dup := hosts[r.key]; dup {
			d.errorf(at, p+".from", "%s is the same origin as the from of %s; each route needs its own host", r.From, prev)
		} else {
			hosts[r.key] = fmt.Sprintf("%s (line %d, column %d)", p, at.Line, at.Column)
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
		r.MCP.Server.validate(p+".mcp.server", d)
	}
	if r.Policy != nil {
		r.Policy.validate(p+".policy", d)
	}
	switch {
	case r.MCP == nil && !d.failedUnder(p+".mcp"):
		d.errorf(at, p+".mcp", "missing; this proxy serves MCP routes: add mcp: {server: {}} for auto-discovery")
	case r.MCP != nil && r.MCP.Server == nil && !d.failedUnder(p+".mcp"):
		d.errorf(d.pos(p+".mcp"), p+".mcp.server", "missing; add server: {} for auto-discovery")
	}
}

func (s *MCPServer) validate(p string, d *decoder) {
	if u := s.UpstreamOAuth2; u != nil {
		u.validate(p, s, d)
	}
	s.validateBinding(p, d)
	s.validateHTTP(p, d)
}

func (u *UpstreamOAuth2) validate(p string, s *MCPServer, d *decoder) {
	{
		up := p + ".upstream_oauth2"
		onlyRequestShape := u.ClientSecret == "" && u.Endpoint == nil && len(u.Scopes) == 0 && (len(u.Audience) > 0 || u.OmitResource)
		if u.ClientID == "" && !onlyRequestShape && !d.failed(up+".client_id") {
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
		for i, a := range u.Audience {
			if strings.TrimSpace(a) == "" || strings.ContainsAny(a, " \"\\") {
				ap := fmt.Sprintf("%s.audience[%d]", up, i)
				d.errorf(d.pos(ap), ap, "%q is not an audience; write one value per list entry, without spaces", a)
			}
		}
		if s.DynamicClientRegistration && !onlyRequestShape {
			d.errorf(d.pos(p+".dynamic_client_registration"), p+".dynamic_client_registration",
				"has no effect with upstream_oauth2.client_id: the proxy uses the registered client; remove one of them")
		}
	}
}

func (s *MCPServer) validateBinding(p string, d *decoder) {
	bp := p + ".upstream_token_binding"
	switch BindingMode(s.UpstreamTokenBinding) {
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
}

func (s *MCPServer) validateHTTP(p string, d *decoder) {
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
