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
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/redact"
)

// Bounds of one registration request.
const (
	// MaxBodyBytes is the largest registration request the proxy reads.
	MaxBodyBytes = 16 << 10
	// MaxRedirectURIs is how many redirect URIs one client may register.
	MaxRedirectURIs = 10
	// maxClientURI bounds client_uri: as long as a redirect URI may be.
	maxClientURI = clientid.MaxRedirectURI
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
// *Error. The checks run in a fixed order (the body, client
// authentication and grants, the client's name and URI, the redirect URIs'
// count, the application type, each redirect URI), so a request with
// several faults is always refused for the same one.
func Decode(body []byte) (*Request, error) {
	m, err := decodeWire(body)
	if err != nil {
		return nil, err
	}
	if err := checkGrants(m); err != nil {
		return nil, err
	}
	r := &Request{}
	if r.Name, err = checkName(m.ClientName); err != nil {
		return nil, err
	}
	if r.URI, err = checkClientURI(m.ClientURI); err != nil {
		return nil, err
	}
	if err := checkRedirectCount(m.RedirectURIs); err != nil {
		return nil, err
	}
	if r.ApplicationType, err = applicationType(m.ApplicationType, m.RedirectURIs); err != nil {
		return nil, err
	}
	if err := checkRedirectURIs(m.RedirectURIs, r.ApplicationType == Native); err != nil {
		return nil, err
	}
	r.RedirectURIs = m.RedirectURIs
	return r, nil
}

// decodeWire bounds the body's size and decodes it as one JSON object,
// naming the field of a value of the wrong type.
func decodeWire(body []byte) (*wire, error) {
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
	return &m, nil
}

// checkGrants checks what the client asks to authenticate with and to be
// issued: a public client (token_endpoint_auth_method none), the
// authorization_code grant (refresh_token besides), response type code.
func checkGrants(m *wire) error {
	if m.TokenEndpointAuthMethod != nil && *m.TokenEndpointAuthMethod != "none" {
		return metadataError("token_endpoint_auth_method %q is not supported: the proxy registers public clients only; send \"none\" and use PKCE (S256)", redact.Truncate(*m.TokenEndpointAuthMethod, 40))
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return metadataError("grant_types %q is not supported: the proxy issues authorization_code and refresh_token", redact.Truncate(g, 40))
		}
	}
	if len(m.GrantTypes) > 0 && !slices.Contains(m.GrantTypes, "authorization_code") {
		return metadataError("grant_types must include authorization_code")
	}
	for _, t := range m.ResponseTypes {
		if t != "code" {
			return metadataError("response_types %q is not supported: the proxy issues code only", redact.Truncate(t, 40))
		}
	}
	return nil
}

// checkName returns client_name trimmed, or "" when the client sent none:
// at most MaxNameLength characters of valid UTF-8 without control
// characters, since the consent page and the log show it.
func checkName(name *string) (string, error) {
	if name == nil {
		return "", nil
	}
	n := strings.TrimSpace(*name)
	switch {
	case utf8.RuneCountInString(n) > MaxNameLength:
		return "", metadataError("client_name is longer than %d characters", MaxNameLength)
	case strings.ContainsFunc(n, func(c rune) bool { return unicode.IsControl(c) || c == utf8.RuneError }):
		return "", metadataError("client_name contains control characters or invalid UTF-8")
	}
	return n, nil
}

// checkClientURI returns client_uri, or "" when the client sent none or an
// empty one: an https URL with a host and without user information.
func checkClientURI(uri *string) (string, error) {
	if uri == nil || *uri == "" {
		return "", nil
	}
	u, err := url.Parse(*uri)
	if len(*uri) > maxClientURI || err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", metadataError("client_uri must be an https URL without user information, at most %d characters", maxClientURI)
	}
	return *uri, nil
}

// checkRedirectCount checks that the client registers between one and
// MaxRedirectURIs redirect URIs.
func checkRedirectCount(uris []string) error {
	if len(uris) == 0 {
		return &Error{CodeInvalidRedirectURI, "redirect_uris is missing: register at least one redirect URI"}
	}
	if len(uris) > MaxRedirectURIs {
		return &Error{CodeInvalidRedirectURI, fmt.Sprintf("redirect_uris has %d entries; at most %d are allowed", len(uris), MaxRedirectURIs)}
	}
	return nil
}

// applicationType returns the application_type the client sent (web or
// native), or, when it sent none, the one its redirect URIs imply.
func applicationType(sent *string, uris []string) (string, error) {
	switch {
	case sent == nil:
		return deriveApplicationType(uris), nil
	case *sent == Web || *sent == Native:
		return *sent, nil
	default:
		return "", metadataError("application_type %q is not web or native", redact.Truncate(*sent, 40))
	}
}

// checkRedirectURIs checks each redirect URI with the one rule of
// clientid.CheckRedirectURI, naming the first that breaks it by index.
func checkRedirectURIs(uris []string, native bool) error {
	for i, u := range uris {
		if err := clientid.CheckRedirectURI(u, native); err != nil {
			return &Error{CodeInvalidRedirectURI, fmt.Sprintf("redirect_uris[%d] %v", i, err)}
		}
	}
	return nil
}

// deriveApplicationType is the application type of a request that names
// none: native when every redirect URI is a loopback or private-use one
// (what a desktop client registers), else web. OpenID Connect's default,
// web, would refuse every desktop client with a private-use scheme that
// leaves the field out.
func deriveApplicationType(uris []string) string {
	for _, u := range uris {
		if !clientid.LooksNative(u) {
			return Web
		}
	}
	return Native
}
