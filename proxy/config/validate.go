package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strconv"
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
	case t.ACME != nil:
		if t.CertFile != "" || t.KeyFile != "" {
			d.errorf(d.pos("tls.acme"), "tls.acme", "cert_file and key_file do not apply with acme, which obtains the certificates itself; remove one or the other")
		}
		t.ACME.validate(c, d)
	case c.TLS.CertFile == "" && c.TLS.KeyFile == "":
		d.errorf(root, "tls", "missing; name the certificate and key the proxy serves, as tls.cert_file and tls.key_file, or obtain them with tls.acme")
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

func (a *ACME) validate(c *Config, d *decoder) {
	const p = "tls.acme"
	switch {
	case a.Email == "" && !d.failed(p+".email"):
		d.errorf(d.pos(p), p+".email", "missing; set the address the certificate authority writes to about your certificates, such as ops@example.com")
	case a.Email != "":
		if _, err := mail.ParseAddress(a.Email); err != nil || strings.ContainsAny(a.Email, "<> ") {
			d.errorf(d.pos(p+".email"), p+".email", "%q is not an email address, such as ops@example.com", a.Email)
		}
	}
	if a.DirectoryURL != "" {
		if _, msg := parseServiceURL(a.DirectoryURL); msg != "" {
			d.errorf(d.pos(p+".directory_url"), p+".directory_url", "%s", msg)
		}
	}
	if a.CAFile != "" {
		if _, err := os.Stat(c.Path(a.CAFile)); err != nil {
			d.errorf(d.pos(p+".ca_file"), p+".ca_file", "cannot read %s: %v", a.CAFile, errors.Unwrap(err))
		}
	}
	if a.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(a.HTTPListen); err != nil {
			d.errorf(d.pos(p+".http_listen"), p+".http_listen", "%q is not a host:port address, such as :80", a.HTTPListen)
		}
	}
	for i, ch := range a.Challenges {
		cp := fmt.Sprintf("%s.challenges[%d]", p, i)
		switch {
		case ch != ChallengeTLSALPN && ch != ChallengeHTTP:
			d.errorf(d.pos(cp), cp, "%q is not a challenge the proxy answers; use tls-alpn-01 or http-01", ch)
		case slices.Index(a.Challenges, ch) < i:
			d.errorf(d.pos(cp), cp, "%s is listed twice; keep one", ch)
		case ch == ChallengeHTTP && a.HTTPListen == "":
			d.errorf(d.pos(cp), cp, "http-01 is answered on a plain HTTP listener: set tls.acme.http_listen, such as \":80\"")
		}
	}
	if _, present := d.nodes[p+".challenges"]; present && len(a.Challenges) == 0 {
		d.errorf(d.pos(p+".challenges"), p+".challenges", "empty; list tls-alpn-01, http-01 or both, or leave it out for the default")
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
		if c.Storage.RedisSentinel != nil {
			d.errorf(d.pos("storage.redis_sentinel"), "storage.redis_sentinel", "only applies to type: redis")
		}
	case StorageRedis:
		switch {
		case c.Storage.RedisURL != "" && c.Storage.RedisSentinel != nil:
			d.errorf(d.pos("storage.redis_sentinel"), "storage.redis_sentinel", "set redis_url (one Redis server) or redis_sentinel (a primary and replicas watched by Sentinels), not both")
		case c.Storage.RedisSentinel != nil:
			c.Storage.RedisSentinel.validate(d)
		case c.Storage.RedisURL == "" && !d.failed("storage.redis_url"):
			d.errorf(d.pos("storage"), "storage.redis_url", "missing; the redis store needs the server's URL, such as redis://redis.internal:6379/0, or redis_sentinel with the Sentinels' addresses")
		default:
			if u, err := url.Parse(c.Storage.RedisURL); c.Storage.RedisURL != "" && (err != nil || (u.Scheme != "redis" && u.Scheme != "rediss")) {
				d.errorf(d.pos("storage.redis_url"), "storage.redis_url", "%q is not a redis:// or rediss:// URL", redactURL(c.Storage.RedisURL))
			}
		}
		if c.Storage.Path != "" {
			d.errorf(d.pos("storage.path"), "storage.path", "only applies to type: file")
		}
	default:
		d.errorf(d.pos("storage.type"), "storage.type", "%q is not a store; use memory, file or redis", c.Storage.Type)
	}
}

func (r *RedisSentinel) validate(d *decoder) {
	const p = "storage.redis_sentinel"
	// A misspelt field is reported already; "missing" beside it is noise.
	misspelt := d.failedUnder(p)
	if r.MasterName == "" && !misspelt {
		d.errorf(d.pos(p), p+".master_name", "missing; set the name the Sentinels watch the primary under (their sentinel monitor <name> ...)")
	}
	if len(r.Addresses) == 0 && !misspelt {
		d.errorf(d.pos(p), p+".addresses", "missing; list the Sentinels' host:port addresses, such as [sentinel-1.internal:26379, sentinel-2.internal:26379, sentinel-3.internal:26379]")
	}
	seen := map[string]int{}
	for i, a := range r.Addresses {
		ap := fmt.Sprintf("%s.addresses[%d]", p, i)
		if d.failed(ap) {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			d.errorf(d.pos(ap), ap, "%q is not a host:port address, such as sentinel-1.internal:26379", a)
			continue
		}
		if j, dup := seen[a]; dup {
			d.errorf(d.pos(ap), ap, "%s is listed twice (also as addresses[%d]); list each Sentinel once", a, j)
			continue
		}
		seen[a] = i
	}
	if r.DB < 0 {
		d.errorf(d.pos(p+".db"), p+".db", "%d is not a database number; use 0 or more", r.DB)
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
	if s.Enterprise != nil {
		s.Enterprise.validate(p, s, d)
	}
}

func (u *UpstreamOAuth2) validate(p string, s *MCPServer, d *decoder) {
	{
		up := p + ".upstream_oauth2"
		onlyRequestShape := u.ClientSecret == "" && u.PrivateKeyFile == "" && u.Endpoint == nil && len(u.Scopes) == 0 && (len(u.Audience) > 0 || u.OmitResource || u.DPoP != "")
		if u.ClientID == "" && !onlyRequestShape && !d.failed(up+".client_id") {
			d.errorf(d.pos(up), up+".client_id", "missing; set the client id the remote authorization server issued, or remove upstream_oauth2 for auto-discovery")
		}
		u.validateKey(up, d)
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
		u.validateRequestShape(up, d)
		if s.DynamicClientRegistration && (u.ClientID != "" || !onlyRequestShape) {
			d.errorf(d.pos(p+".dynamic_client_registration"), p+".dynamic_client_registration",
				"has no effect with upstream_oauth2.client_id: the proxy uses the registered client; remove one of them")
		}
	}
}

// validateRequestShape checks the options that shape the proxy's requests
// to the remote authorization server: scopes, audience and dpop.
func (u *UpstreamOAuth2) validateRequestShape(up string, d *decoder) {
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
	switch u.DPoP {
	case "", DPoPAuto, DPoPRequired, DPoPOff:
	default:
		d.errorf(d.pos(up+".dpop"), up+".dpop", "%q is not a DPoP mode; use auto (DPoP when the remote server asks for it), required or off", u.DPoP)
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
		case sa == nil || (sa.Admin == "" && !sa.ClientCredentials && sa.WorkloadIdentity == nil):
			d.errorf(d.pos(bp), p+".service_account", "missing; say where the shared token comes from: service_account.admin (a user who consents once for everyone), service_account.client_credentials: true or service_account.workload_identity")
		case sources(sa) > 1:
			d.errorf(d.pos(p+".service_account"), p+".service_account", "admin, client_credentials and workload_identity are three sources of the shared token; set one")
		case sa.WorkloadIdentity != nil:
			sa.WorkloadIdentity.validate(p+".service_account.workload_identity", s.UpstreamOAuth2, d)
		case sa.ClientCredentials && (s.UpstreamOAuth2 == nil || s.UpstreamOAuth2.ClientSecret == "" && s.UpstreamOAuth2.PrivateKeyFile == ""):
			d.errorf(d.pos(p+".service_account.client_credentials"), p+".service_account.client_credentials", "needs upstream_oauth2.client_id and its client_secret or private_key_file: the client credentials grant authenticates the proxy's registered client")
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

// validateKey checks private_key_file and private_key_id, and provisions
// the key: a configuration names a key the proxy can sign with, or it is
// refused now rather than at the first token request.
func (u *UpstreamOAuth2) validateKey(up string, d *decoder) {
	kp := up + ".private_key_file"
	switch {
	case u.PrivateKeyFile == "":
		if u.PrivateKeyID != "" {
			d.errorf(d.pos(up+".private_key_id"), up+".private_key_id", "only applies with private_key_file")
		}
		return
	case u.ClientSecret != "":
		d.errorf(d.pos(kp), up, "client_secret and private_key_file are two ways for the proxy to authenticate; set one")
		return
	}
	b, err := os.ReadFile(d.resolve(u.PrivateKeyFile))
	if err != nil {
		d.errorf(d.pos(kp), kp, "cannot read %s: %v", u.PrivateKeyFile, errors.Unwrap(err))
		return
	}
	key, msg := parsePrivateKey(b)
	if msg != "" {
		d.errorf(d.pos(kp), kp, "%s %s", u.PrivateKeyFile, msg)
		return
	}
	u.privateKey = key
}

// parsePrivateKey reads an unencrypted PEM private key (PKCS #8, SEC 1 or
// PKCS #1) of a kind the proxy signs client assertions with (the keys
// upstream.SigningAlgorithm takes); msg says what is wrong otherwise, after
// the file's name.
func parsePrivateKey(b []byte) (crypto.Signer, string) {
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, "holds no PEM private key; write the key as -----BEGIN PRIVATE KEY----- (PKCS #8), EC PRIVATE KEY or RSA PRIVATE KEY"
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, "holds an encrypted private key; the proxy needs it unencrypted (protect the file with its permissions)"
		default:
			continue // a certificate or parameters beside the key
		}
		if err != nil {
			return nil, fmt.Sprintf("holds a %s block that does not parse: %v", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Sprintf("holds an EC key on %s; use an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)", k.Curve.Params().Name)
			}
			return k, ""
		case *rsa.PrivateKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Sprintf("holds an RSA key of %d bits; RSA keys need at least 2048 bits", k.N.BitLen())
			}
			return k, ""
		}
		return nil, fmt.Sprintf("holds a %T key; use an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)", key)
	}
}
