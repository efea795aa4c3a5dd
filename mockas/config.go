package mockas

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// User is an account that can sign in on the login page.
type User struct {
	// Username is what the person types into the login form. Required and
	// unique.
	Username string
	// Password is compared in constant time with what the login form sent.
	// Required.
	Password string
	// Subject is the stable "sub" claim of the user's tokens. Empty means
	// Username.
	Subject string
	// Email is returned as the "email" claim when the "email" scope was
	// granted. Empty means the user has no email address.
	Email string
	// Name is returned as the "name" claim when the "profile" scope was
	// granted. Empty means Username.
	Name string
	// EmailUnverified makes email_verified false: the provider has not
	// checked that the user owns the address.
	EmailUnverified bool
	// Groups are returned as the "groups" claim when the "groups" scope was
	// granted, as Dex does.
	Groups []string
}

// DefaultUsers are the accounts of a server whose [Config.Users] is nil:
//
//	username  password         sub    email                          name           groups
//	alice     alice-password   alice  alice@example.com              Alice Example  platform
//	bob       bob-password     bob    bob@example.com                Bob Example
//	carol     carol-password   carol  carol@example.com (unverified) Carol Example  platform
var DefaultUsers = []User{
	{Username: "alice", Password: "alice-password", Subject: "alice", Email: "alice@example.com", Name: "Alice Example", Groups: []string{"platform"}},
	{Username: "bob", Password: "bob-password", Subject: "bob", Email: "bob@example.com", Name: "Bob Example"},
	{Username: "carol", Password: "carol-password", Subject: "carol", Email: "carol@example.com", Name: "Carol Example", EmailUnverified: true, Groups: []string{"platform"}},
}

// Client is a pre-registered OAuth client.
type Client struct {
	// ID is the client_id. Required and unique. It must not be an https URL:
	// such ids name Client ID Metadata Documents.
	ID string
	// Secret is the client secret of a confidential client, which must then
	// authenticate at the token endpoint with client_secret_basic or
	// client_secret_post (RFC 6749 §2.3.1). Empty means a public client, which
	// must not authenticate (token_endpoint_auth_method "none").
	Secret string
	// Name is shown on the consent page. Empty means ID.
	Name string
	// RedirectURIs are the redirect URIs an authorization request may name,
	// compared by exact string match. At least one is required; each must be
	// https, or http on a loopback host (localhost, 127.0.0.1, [::1]).
	RedirectURIs []string
	// PublicKey makes the client confidential without a secret: it must
	// authenticate at the token and revocation endpoints with a client
	// assertion (private_key_jwt, RFC 7523 §2.2) signed with the private
	// half, an EC P-256 key (ES256) or an RSA key (RS256). Not with Secret.
	PublicKey crypto.PublicKey
}

// WorkloadIssuer is an issuer of workload JWTs the server trusts.
type WorkloadIssuer struct {
	// Issuer is the tokens' iss, compared exactly.
	Issuer string
	// PublicKey verifies their signatures: EC P-256 (ES256) or RSA of at
	// least 2048 bits (RS256).
	PublicKey crypto.PublicKey
}

// ParseWorkloadIssuerFlag parses the value of cmd/mockas's
// -workload-issuer flag: "ISSUER=KEY", KEY a base64url PKIX public key.
func ParseWorkloadIssuerFlag(v string) (WorkloadIssuer, error) {
	i := strings.LastIndex(v, "=")
	if i <= 0 {
		return WorkloadIssuer{}, fmt.Errorf("workload issuer %q is not ISSUER=KEY", v)
	}
	der, err := base64.RawURLEncoding.DecodeString(v[i+1:])
	var pub crypto.PublicKey
	if err == nil {
		pub, err = x509.ParsePKIXPublicKey(der)
	}
	if err != nil {
		return WorkloadIssuer{}, fmt.Errorf("workload issuer %q: the key is not a base64url PKIX public key: %v", v[:i], err)
	}
	return WorkloadIssuer{Issuer: v[:i], PublicKey: pub}, nil
}

// Config configures a [Server]. The zero value of every field except Issuer is
// a documented default.
type Config struct {
	// Issuer is the issuer identifier (RFC 8414 §2): an https URL without
	// query or fragment, and without a trailing slash. It may carry a path,
	// such as https://auth.provider.com/tenant1; every endpoint then lives
	// under that path. Plain http is accepted only for a loopback host, so
	// that a person can try the server on one machine. Required.
	Issuer string
	// Users are the accounts that can sign in. Nil means [DefaultUsers].
	Users []User
	// Clients are the pre-registered clients. Nil means none: clients then
	// identify themselves with Client ID Metadata Documents.
	Clients []Client
	// DisableCIMD turns off Client ID Metadata Documents: an https URL
	// client_id is then an unknown client, and the metadata no longer
	// advertises client_id_metadata_document_supported. The zero value
	// supports and advertises them. [Settings].CIMD switches it at run time.
	DisableCIMD bool
	// EnableDCR turns on dynamic client registration (RFC 7591) at
	// {issuer}/register and advertises it as registration_endpoint. The zero
	// value leaves it off: /register answers 404 and the metadata has no
	// registration_endpoint. [Settings].DCR switches it at run time.
	EnableDCR bool
	// ScopesSupported are the scopes a client may request, advertised in the
	// metadata together with openid, email and profile, which are always
	// supported. Nil means any syntactically valid scope is accepted; when
	// set, a request for a scope outside the list is refused with
	// invalid_scope.
	ScopesSupported []string
	// AccessTokenTTL is the lifetime of access tokens. Zero means one hour.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token (rotation issues a
	// fresh one with a fresh lifetime). Zero means 24 hours.
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of authorization codes. Zero means one minute.
	// The three lifetimes can change at run time: [Server.SetSettings].
	CodeTTL time.Duration
	// SigningAlgorithm is the JWS algorithm of access tokens and ID tokens:
	// "RS256" or "ES256". Empty means RS256, which every OIDC relying party
	// supports.
	SigningAlgorithm string
	// Resolver resolves host names for Client ID Metadata Document fetches.
	// Nil means the system DNS.
	Resolver Resolver
	// Dial makes the TCP connection of a Client ID Metadata Document fetch to
	// an address the SSRF guard has already checked. Nil means a plain
	// net.Dialer. The in-process stack passes its host map's DialContext here,
	// so a dial outside loopback is refused and recorded even if the guard
	// were broken.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TrustedHosts are host names allowed to resolve to special-use addresses
	// (RFC 6890) when a Client ID Metadata Document is fetched: the stack's
	// own names. Nil means none: every such host is refused before any dial.
	TrustedHosts []string
	// AllowLoopback lets any Client ID Metadata Document host resolve to a
	// loopback address. It is an explicit development mode, off by default.
	AllowLoopback bool
	// RootCAs are the roots trusted when fetching Client ID Metadata
	// Documents. Nil means the system roots.
	RootCAs *x509.CertPool
	// ControlSecret guards the test-control API under /.test/ (sent as
	// "Authorization: Bearer <secret>"; the package documentation lists its
	// endpoints). Empty disables the control API: it answers 404.
	ControlSecret string
	// Now is the clock of every expiry and every issued token. Nil means
	// time.Now. Tests advance a fake clock instead of sleeping.
	Now func() time.Time
	// WorkloadIssuers are the issuers of workload JWTs (such as a
	// Kubernetes cluster's service account tokens) whose tokens this
	// server accepts as authorization grants with the JWT bearer grant
	// (RFC 7523 §2.1, SEP-1933). Nil means none: the grant is refused.
	WorkloadIssuers []WorkloadIssuer
	// IDJAGIssuers are the enterprise identity providers whose ID-JAGs
	// (typ oauth-id-jag+jwt) this server accepts with the JWT bearer grant
	// from an authenticated client (SEP-990). Nil means none.
	IDJAGIssuers []WorkloadIssuer
	// IDJAG makes this server an enterprise identity provider that
	// exchanges the ID tokens it issued for ID-JAGs (RFC 8693). Nil: token
	// exchange is refused.
	IDJAG *IDJAGIssuing
	// Logger receives one structured line per request, never a token, code,
	// verifier, password or secret. Nil means no logging.
	Logger *slog.Logger
}

// Defaults of the zero Config fields.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 24 * time.Hour
	DefaultCodeTTL         = time.Minute
)

// oidcScopes are always supported: they make the server an OIDC provider.
var oidcScopes = []string{"openid", "email", "profile"}

// validateIssuer checks the issuer rules of RFC 8414 §2 and returns the
// issuer's path ("" or "/tenant").
func validateIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("issuer is required")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %v", issuer, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("issuer %q: plain http is only accepted on a loopback host (localhost, 127.0.0.1, [::1]); use https", issuer)
	default:
		return nil, fmt.Errorf("issuer %q: must be an https URL", issuer)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("issuer %q: has no host", issuer)
	case u.User != nil:
		return nil, fmt.Errorf("issuer %q: must not carry user information", issuer)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("issuer %q: must not have a query (RFC 8414 §2)", issuer)
	case strings.Contains(issuer, "#"):
		return nil, fmt.Errorf("issuer %q: must not have a fragment (RFC 8414 §2)", issuer)
	case strings.HasSuffix(u.Path, "/"):
		return nil, fmt.Errorf("issuer %q: must not end with a slash: issuers are compared as exact strings", issuer)
	case hasDotSegment(u.EscapedPath()):
		return nil, fmt.Errorf("issuer %q: must not have . or .. path segments", issuer)
	case u.String() != issuer:
		return nil, fmt.Errorf("issuer %q: is not in canonical form (%q)", issuer, u.String())
	}
	return u, nil
}

// hasDotSegment reports whether an escaped path has a "." or ".." segment,
// literally or percent-encoded.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		s := strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// isLoopbackHost reports whether host (without port) is localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedirectURI checks that a registered redirect URI is absolute, has no
// fragment (RFC 6749 §3.1.2) and is https or loopback http (MCP
// authorization, "Communication Security").
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redirect URI %q: %v", raw, err)
	}
	if !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("redirect URI %q is not an absolute URL", raw)
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q has a fragment (RFC 6749 §3.1.2)", raw)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("redirect URI %q must be https, or http on localhost, 127.0.0.1 or [::1]", raw)
}

// validScope reports whether s is a scope token (RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E )).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// ParseClientFlag parses the value of cmd/mockas's -client flag:
// "id=ID,secret=S,redirect=URI[,redirect=URI...][,name=NAME]" or, for a
// private_key_jwt client, key=PUBLIC instead of secret=S, where PUBLIC is
// the public key's DER (PKIX) in unpadded base64url. secret and key may be
// omitted for a public client. Redirect URIs must not contain commas.
func ParseClientFlag(v string) (Client, error) {
	var c Client
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return Client{}, fmt.Errorf("client %q: %q is not key=value (keys: id, secret, key, redirect, name)", v, part)
		}
		switch k {
		case "id":
			c.ID = val
		case "secret":
			c.Secret = val
		case "redirect":
			c.RedirectURIs = append(c.RedirectURIs, val)
		case "name":
			c.Name = val
		case "key":
			der, err := base64.RawURLEncoding.DecodeString(val)
			if err == nil {
				c.PublicKey, err = x509.ParsePKIXPublicKey(der)
			}
			if err != nil {
				return Client{}, fmt.Errorf("client %q: key= is not a base64url PKIX public key: %v", v, err)
			}
		default:
			return Client{}, fmt.Errorf("client %q: unknown key %q (keys: id, secret, key, redirect, name)", v, k)
		}
	}
	if c.ID == "" {
		return Client{}, fmt.Errorf("client %q: id= is required", v)
	}
	if len(c.RedirectURIs) == 0 {
		return Client{}, fmt.Errorf("client %q: at least one redirect= is required", v)
	}
	return c, nil
}

// ParseUserFlag parses the value of cmd/mockas's -user flag:
// "name:password". The user's subject is the name, the email
// name@example.com, the display name the name.
func ParseUserFlag(v string) (User, error) {
	name, pw, ok := strings.Cut(v, ":")
	if !ok || name == "" || pw == "" {
		return User{}, fmt.Errorf("user %q: want name:password with both parts non-empty", v)
	}
	return User{Username: name, Password: pw, Subject: name, Email: name + "@example.com", Name: name}, nil
}

// ClientKeyFlag is the key= value of a -client flag for pub: its DER
// (PKIX) in unpadded base64url.
func ClientKeyFlag(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(der), nil
}
