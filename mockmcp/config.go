package mockmcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// PRMLocation says where the server publishes its protected resource
// metadata (RFC 9728) and which URL its 401 challenge names.
type PRMLocation int

const (
	// PRMPathSuffixed serves the metadata at the path-suffixed well-known
	// URL, https://host/.well-known/oauth-protected-resource/mcp for the
	// resource https://host/mcp, with "resource" equal to ResourceURL. The
	// root well-known URL answers 404. This is the default.
	PRMPathSuffixed PRMLocation = iota
	// PRMRoot serves the metadata at https://host/.well-known/oauth-protected-resource
	// only, with "resource" equal to the origin of ResourceURL (no trailing
	// slash). Tokens whose audience is either ResourceURL or that origin are
	// accepted, because a client that discovered the origin as the resource
	// asks the AS for a token for the origin (RFC 8707).
	PRMRoot
	// PRMAbsent serves no metadata (404 at both well-known URLs) and the 401
	// challenge carries no resource_metadata parameter.
	PRMAbsent
)

// String returns the flag spelling: "path", "root" or "absent".
func (l PRMLocation) String() string {
	switch l {
	case PRMPathSuffixed:
		return "path"
	case PRMRoot:
		return "root"
	case PRMAbsent:
		return "absent"
	}
	return fmt.Sprintf("PRMLocation(%d)", int(l))
}

// ParsePRMLocation parses the flag spelling of a [PRMLocation].
func ParsePRMLocation(s string) (PRMLocation, error) {
	switch s {
	case "path", "":
		return PRMPathSuffixed, nil
	case "root":
		return PRMRoot, nil
	case "absent":
		return PRMAbsent, nil
	}
	return 0, fmt.Errorf("unknown protected resource metadata location %q: want path, root or absent", s)
}

// MarshalText writes the flag spelling, so JSON carries "path", "root" or
// "absent".
func (l PRMLocation) MarshalText() ([]byte, error) {
	switch l {
	case PRMPathSuffixed, PRMRoot, PRMAbsent:
		return []byte(l.String()), nil
	}
	return nil, fmt.Errorf("unknown protected resource metadata location %d", int(l))
}

// UnmarshalText parses the flag spelling; the empty string is not accepted.
func (l *PRMLocation) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return errors.New(`empty protected resource metadata location: want path, root or absent`)
	}
	v, err := ParsePRMLocation(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Config configures a [Server]. Zero values are the documented defaults.
type Config struct {
	// ResourceURL is the server's resource identifier (RFC 8707, RFC 9728),
	// such as https://remote-mcp.provider.com/mcp. It is required. MCP is
	// served at its path, and tokens must name it in "aud". It must be an
	// absolute https URL (http only for a loopback host) in canonical form:
	// lower-case scheme and host, no query, fragment or user info.
	ResourceURL string

	// AuthorizationServers are the issuer URLs whose tokens the server
	// accepts, listed in the metadata's authorization_servers. A token's
	// "iss" must equal one of them exactly, and its signature must verify
	// with a key from that issuer's JWKS. Required unless NoAuth is set.
	AuthorizationServers []string

	// ExternalIssuers are those of AuthorizationServers that are real
	// authorization servers rather than mockas, whose JWT access tokens
	// follow their own profile: Ory Hydra types them "JWT" (not at+jwt) and
	// lists scopes in an "scp" array. Their tokens are verified in full all
	// the same: signature with a key of the issuer's JWKS, iss, aud, exp,
	// iat, sub, client_id and jti.
	ExternalIssuers []string

	// NoAuth makes the server an internal upstream that needs no OAuth: it
	// checks no token, serves no protected resource metadata, and whoami
	// answers with empty identity fields. An Authorization header that still
	// arrives is recorded as a fingerprint, so a scenario can prove that none
	// was sent. It is the startup value of [Settings.NoAuth], which the
	// control API can switch; switching it off needs AuthorizationServers.
	NoAuth bool

	// PRM says where protected resource metadata is served and which URL the
	// challenge names. The zero value is [PRMPathSuffixed]. It is the startup
	// value of [Settings.PRM].
	PRM PRMLocation

	// ScopesSupported is advertised as scopes_supported in the metadata.
	ScopesSupported []string

	// ChallengeScopes are sent as scope="..." in the 401 challenge. Nil means
	// ScopesSupported; an empty, non-nil slice sends no scope parameter. It
	// is the startup value of [Settings.ChallengeScopes].
	ChallengeScopes []string

	// ToolScopes names, per tool, the scopes a token must carry to call it.
	// A tools/call for such a tool with a token that lacks one of them gets
	// 403 with error="insufficient_scope" and scope="..." listing
	// ChallengeScopes and the tool's scopes (MCP authorization, scope
	// step-up). Nil means every valid token may call every tool. It is the
	// startup value of [Settings.ToolScopes].
	ToolScopes map[string][]string

	// ResourceName is published as resource_name in the metadata. Empty
	// means "Mock MCP server".
	ResourceName string

	// AllowAnyHost turns off the Host check. By default the MCP endpoint and
	// the metadata answer 421 Misdirected Request when the Host header does
	// not name ResourceURL's host, which catches a proxy that forwards its
	// own Host upstream.
	AllowAnyHost bool

	// HTTPClient fetches authorization server metadata (RFC 8414, then OpenID
	// Connect discovery), then the jwks_uri it names. Nil means
	// http.DefaultClient.
	HTTPClient *http.Client

	// ControlSecret guards the test-control API under /.test/. Empty turns
	// the API off: it answers 404.
	ControlSecret string

	// Now is the clock used for token validity, key cache ages and event
	// times. Nil means time.Now. Tests use a fake clock instead of sleeping.
	Now func() time.Time

	// Logger receives the server's structured logs (log/slog, stable
	// snake_case keys, never a token). Nil discards them.
	Logger *slog.Logger
}

// validate checks cfg and returns every problem at once.
func (cfg *Config) validate() (*url.URL, error) {
	var errs []error
	var resource *url.URL
	if cfg.ResourceURL == "" {
		errs = append(errs, errors.New("ResourceURL is required"))
	} else if u, err := checkURL("ResourceURL", cfg.ResourceURL); err != nil {
		errs = append(errs, err)
	} else {
		resource = u
	}
	if !cfg.NoAuth && len(cfg.AuthorizationServers) == 0 {
		errs = append(errs, errors.New("AuthorizationServers needs at least one issuer URL unless NoAuth is set"))
	}
	for i, as := range cfg.AuthorizationServers {
		if _, err := checkURL(fmt.Sprintf("AuthorizationServers[%d]", i), as); err != nil {
			errs = append(errs, err)
		}
	}
	for i, iss := range cfg.ExternalIssuers {
		if !slices.Contains(cfg.AuthorizationServers, iss) {
			errs = append(errs, fmt.Errorf("ExternalIssuers[%d] %q is not one of AuthorizationServers", i, iss))
		}
	}
	for _, sc := range cfg.ScopesSupported {
		if err := checkScopeToken(sc); err != nil {
			errs = append(errs, fmt.Errorf("ScopesSupported: %w", err))
		}
	}
	errs = append(errs, checkSettings(Settings{
		PRM:             cfg.PRM,
		ChallengeScopes: cfg.ChallengeScopes,
		ToolScopes:      cfg.ToolScopes,
		NoAuth:          cfg.NoAuth,
	}, len(cfg.AuthorizationServers) > 0, "")...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("mockmcp: invalid configuration: %w", errors.Join(errs...))
	}
	return resource, nil
}

// checkSettings returns every problem of st. haveAS says whether the server
// has authorization servers, without which it can only run without auth.
// prefix names the fields: "" for Config field names, "json" for the JSON
// names of the control API.
func checkSettings(st Settings, haveAS bool, prefix string) []error {
	name := func(goName, jsonName string) string {
		if prefix == "json" {
			return jsonName
		}
		return goName
	}
	var errs []error
	switch st.PRM {
	case PRMPathSuffixed, PRMRoot, PRMAbsent:
	default:
		errs = append(errs, fmt.Errorf("%s: unknown location %d", name("PRM", "prm"), int(st.PRM)))
	}
	if st.DPoPNonce && !st.DPoP {
		errs = append(errs, fmt.Errorf("%s needs %s: a nonce is part of a DPoP proof", name("DPoPNonce", "dpop_nonce"), name("DPoP", "dpop")))
	}
	if !st.NoAuth && !haveAS && prefix == "json" {
		errs = append(errs, errors.New("no_auth: false needs authorization servers, and this server was started without any (-as)"))
	}
	for _, sc := range st.ChallengeScopes {
		if err := checkScopeToken(sc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name("ChallengeScopes", "challenge_scopes"), err))
		}
	}
	tools := make([]string, 0, len(st.ToolScopes))
	for tool := range st.ToolScopes {
		tools = append(tools, tool)
	}
	slices.Sort(tools)
	for _, tool := range tools {
		scopes := st.ToolScopes[tool]
		field := fmt.Sprintf("%s[%q]", name("ToolScopes", "tool_scopes"), tool)
		if len(scopes) == 0 {
			errs = append(errs, fmt.Errorf("%s: no scopes listed", field))
		}
		for _, sc := range scopes {
			if err := checkScopeToken(sc); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	return errs
}

// checkURL accepts an absolute https URL, or http for a loopback host, in
// canonical form.
func checkURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", field, raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%s %q: want an https URL", field, raw)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return nil, fmt.Errorf("%s %q: plain http is accepted only for a loopback host (localhost, 127.0.0.1, [::1])", field, raw)
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%s %q: want an absolute URL with a host", field, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s %q: user info is not allowed", field, raw)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%s %q: a query is not allowed", field, raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%s %q: a fragment is not allowed", field, raw)
	case raw != strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host)+u.EscapedPath():
		return nil, fmt.Errorf("%s %q: not canonical; write it as %q", field, raw, strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host)+u.EscapedPath())
	}
	return u, nil
}

// isLoopbackHost reports whether host (without port) is localhost or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkScopeToken enforces the scope-token grammar of RFC 6749 §3.3, which
// also keeps a scope safe inside a quoted challenge parameter.
func checkScopeToken(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return fmt.Errorf("scope %q: not a scope-token (RFC 6749 §3.3)", s)
		}
	}
	return nil
}
