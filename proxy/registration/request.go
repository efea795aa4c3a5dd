// Package registration is dynamic client registration (RFC 7591) of MCP
// clients at the proxy: the registration request's decoder and its rules,
// the stored registrations and the bounds that keep strangers from
// filling the store (size, rate, count, lifetime of unused registrations).
//
// Registered clients are public (token_endpoint_auth_method none, PKCE
// S256); the proxy issues no client secret and no registration access
// token (no RFC 7592 management).
package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of one registration request.
const (
	// MaxBodyBytes is the largest registration request the proxy reads.
	MaxBodyBytes = 16 << 10
	// MaxRedirectURIs is how many redirect URIs one client may register.
	MaxRedirectURIs = 10
	// MaxURILength bounds each URL of a registration.
	MaxURILength = 2000
	// MaxNameLength bounds client_name, in characters.
	MaxNameLength = 100
)

// Application types (OpenID Connect Dynamic Client Registration §2).
const (
	Web    = "web"
	Native = "native"
)

// Error is a refused registration: an RFC 7591 §3.2.2 error code
// (invalid_redirect_uri or invalid_client_metadata) and a description that
// names the field and what to send instead.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Codes of Error.
const (
	CodeInvalidRedirectURI    = "invalid_redirect_uri"
	CodeInvalidClientMetadata = "invalid_client_metadata"
)

func metadataError(format string, args ...any) *Error {
	return &Error{CodeInvalidClientMetadata, fmt.Sprintf(format, args...)}
}

// Request is an accepted registration request: the metadata the proxy
// registers, with defaults applied.
type Request struct {
	Name            string // empty when the client sent none
	URI             string
	RedirectURIs    []string
	ApplicationType string // web or native
}

// wire is the registration request as sent. Fields the proxy does not use
// (scope, contacts, logo_uri, software_id, software_statement, ...) are
// ignored, as RFC 7591 §2 allows; their values are not stored.
type wire struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              *string  `json:"client_name"`
	ClientURI               *string  `json:"client_uri"`
	ApplicationType         *string  `json:"application_type"`
}

// Decode reads and checks a registration request body. Its error is an
// *Error.
func Decode(body []byte) (*Request, error) {
	if len(body) > MaxBodyBytes {
		return nil, metadataError("the registration request is larger than %d bytes", MaxBodyBytes)
	}
	if !json.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return nil, metadataError("the registration request is not a JSON object")
	}
	var m wire
	if err := json.Unmarshal(body, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, metadataError("%s has the wrong type: want %s", te.Field, te.Type)
		}
		return nil, metadataError("the registration request does not decode: %v", err)
	}
	if m.TokenEndpointAuthMethod != nil && *m.TokenEndpointAuthMethod != "none" {
		return nil, metadataError("token_endpoint_auth_method %q is not supported: the proxy registers public clients only; send \"none\" and use PKCE (S256)", bounded(*m.TokenEndpointAuthMethod, 40))
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, metadataError("grant_types %q is not supported: the proxy issues authorization_code and refresh_token", bounded(g, 40))
		}
	}
	if len(m.GrantTypes) > 0 && !slices.Contains(m.GrantTypes, "authorization_code") {
		return nil, metadataError("grant_types must include authorization_code")
	}
	for _, t := range m.ResponseTypes {
		if t != "code" {
			return nil, metadataError("response_types %q is not supported: the proxy issues code only", bounded(t, 40))
		}
	}
	r := &Request{}
	if m.ClientName != nil {
		name := strings.TrimSpace(*m.ClientName)
		switch {
		case utf8.RuneCountInString(name) > MaxNameLength:
			return nil, metadataError("client_name is longer than %d characters", MaxNameLength)
		case strings.ContainsFunc(name, func(c rune) bool { return unicode.IsControl(c) || c == utf8.RuneError }):
			return nil, metadataError("client_name contains control characters or invalid UTF-8")
		}
		r.Name = name
	}
	if m.ClientURI != nil && *m.ClientURI != "" {
		u, err := url.Parse(*m.ClientURI)
		if len(*m.ClientURI) > MaxURILength || err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return nil, metadataError("client_uri must be an https URL without user information, at most %d characters", MaxURILength)
		}
		r.URI = *m.ClientURI
	}
	if len(m.RedirectURIs) == 0 {
		return nil, &Error{CodeInvalidRedirectURI, "redirect_uris is missing: register at least one redirect URI"}
	}
	if len(m.RedirectURIs) > MaxRedirectURIs {
		return nil, &Error{CodeInvalidRedirectURI, fmt.Sprintf("redirect_uris has %d entries; at most %d are allowed", len(m.RedirectURIs), MaxRedirectURIs)}
	}
	switch {
	case m.ApplicationType == nil:
		r.ApplicationType = deriveApplicationType(m.RedirectURIs)
	case *m.ApplicationType == Web || *m.ApplicationType == Native:
		r.ApplicationType = *m.ApplicationType
	default:
		return nil, metadataError("application_type %q is not web or native", bounded(*m.ApplicationType, 40))
	}
	for _, u := range m.RedirectURIs {
		if err := CheckRedirectURI(r.ApplicationType, u); err != nil {
			return nil, err
		}
	}
	r.RedirectURIs = m.RedirectURIs
	return r, nil
}

// deriveApplicationType is the application type of a request that names
// none: native when every redirect URI is a loopback or private-use one
// (what a desktop client registers), else web. OpenID Connect's default,
// web, would refuse every desktop client that leaves the field out.
func deriveApplicationType(uris []string) string {
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil || !(isLoopbackHTTP(u) || isPrivateUseScheme(u.Scheme)) {
			return Web
		}
	}
	return Native
}

// CheckRedirectURI reports why raw cannot be a redirect URI of a client of
// the application type, or nil. Web clients: https only, never a loopback
// host. Native clients (RFC 8252 §7): http on a loopback host (127.0.0.1,
// [::1] or localhost) on any port, a private-use scheme in reverse domain
// form (com.example.app:/callback), or https. Never javascript:, data:,
// file:, a fragment or user information.
//
// TODO(merge): replace with the shared redirect URI rules of proxy/clientid
// (clientid.CheckRedirectURI) so CIMD and registered clients follow the same
// rules.
func CheckRedirectURI(appType, raw string) error {
	bad := func(why string) error {
		return &Error{CodeInvalidRedirectURI, fmt.Sprintf("redirect URI %q %s", bounded(raw, 200), why)}
	}
	if len(raw) > MaxURILength {
		return &Error{CodeInvalidRedirectURI, fmt.Sprintf("a redirect URI is longer than %d characters", MaxURILength)}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs():
		return bad("is not an absolute URL")
	case strings.Contains(raw, "#"):
		return bad("has a fragment, which a redirect URI must not have (RFC 6749 §3.1.2)")
	case u.User != nil:
		return bad("carries user information, which a redirect URI must not")
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "javascript" || scheme == "data" || scheme == "file" || scheme == "vbscript" || scheme == "blob" || scheme == "about":
		return bad("uses the " + scheme + ": scheme, which is never a redirect URI")
	case scheme == "https":
		if u.Host == "" {
			return bad("has no host")
		}
		if appType == Web && isLoopbackHost(u.Hostname()) {
			return bad("is on a loopback host; a web client redirects to its public https host (register as application_type native for a desktop client)")
		}
		return nil
	case scheme == "http":
		if appType == Native && isLoopbackHTTP(u) {
			return nil
		}
		if appType == Native {
			return bad("uses http on a host other than 127.0.0.1, [::1] or localhost; a native client's http redirect URI must be a loopback one (RFC 8252 §7.3)")
		}
		return bad("uses http; a web client's redirect URI must use https (register as application_type native for a loopback redirect URI)")
	default:
		if appType != Native {
			return bad("uses a private-use scheme, which only a native client may register (application_type native)")
		}
		if !isPrivateUseScheme(scheme) {
			return bad("uses a private-use scheme that is not in reverse domain form, such as com.example.app (RFC 8252 §7.1)")
		}
		return nil
	}
}

func isLoopbackHTTP(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "http") && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// isPrivateUseScheme: a URI scheme (RFC 3986 §3.1) with a dot, as reverse
// domain names have (RFC 8252 §7.1).
func isPrivateUseScheme(s string) bool {
	if !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// bounded returns s cut to n bytes (on a character boundary), with "…" when
// cut, for error messages and logs that quote what a stranger sent.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Bounded is bounded for other packages: text from a registration (a
// client name) cut for a log line.
func Bounded(s string, n int) string { return bounded(s, n) }
