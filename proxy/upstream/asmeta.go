package upstream

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// The authorization server metadata step of discovery (RFC 8414, OpenID
// Connect Discovery): where it may be, fetched and checked.

// checkedAuthServerMetadata fetches the issuer's metadata and checks what
// the proxy needs of it: PKCE with S256, both endpoints, and endpoints on
// hosts it may reach.
func (c *Discoverer) checkedAuthServerMetadata(ctx context.Context, issuer string) (*oauthex.AuthServerMeta, error) {
	asm, err := c.authServerMetadata(ctx, issuer)
	if err != nil {
		return nil, sentencef("The authorization server %s is unusable: %v", issuer, unwrapURLError(err))
	}
	if !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		return nil, sentencef("The authorization server %s does not support PKCE with S256 (code_challenge_methods_supported: %v); the proxy will not authorize without it.", issuer, asm.CodeChallengeMethodsSupported)
	}
	if asm.AuthorizationEndpoint == "" || asm.TokenEndpoint == "" {
		return nil, sentencef("The authorization server %s publishes no authorization_endpoint or token_endpoint.", issuer)
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", asm.AuthorizationEndpoint}, {"token_endpoint", asm.TokenEndpoint},
		{"registration_endpoint", asm.RegistrationEndpoint}, {"revocation_endpoint", asm.RevocationEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if err := c.allow(e.url, "the "+e.name); err != nil {
			return nil, sentencef("The proxy refused %v", err)
		}
	}
	return asm, nil
}

// AuthServerMetadataURLs lists where the metadata of issuer may be, in the
// order the MCP authorization specification tries them: RFC 8414 with the
// issuer's path inserted after the well-known prefix, OpenID Connect
// Discovery 1.0 with the path inserted, then OpenID Connect Discovery with
// the path appended; for an issuer without a path, the RFC 8414 and OpenID
// Connect locations at the root. A terminating "/" of the issuer's path is
// removed first (RFC 8414 §3.1), so https://as.example/ is an issuer
// without a path. The issuer must be an absolute URL without a query or
// fragment (RFC 8414 §2).
func AuthServerMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("the issuer %q is not an absolute URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("the issuer %q has a query or fragment, which RFC 8414 section 2 does not allow", issuer)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("the issuer %q is not an https URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if strings.Contains(path+"/", "//") {
		return nil, fmt.Errorf("the issuer %q has an empty path segment; no metadata location can be built from it", issuer)
	}
	if path == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// authServerMetadata fetches the issuer's metadata from the first of its
// AuthServerMetadataURLs that has it (a 4xx means "not here"); the
// document's issuer must match (RFC 8414 §3.3, a terminating "/" aside).
func (c *Discoverer) authServerMetadata(ctx context.Context, issuer string) (*oauthex.AuthServerMeta, error) {
	urls, err := AuthServerMetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	for _, u := range urls {
		asm, err := oauthex.GetAuthServerMeta(ctx, u, issuer, c.HTTP)
		if err != nil {
			return nil, err
		}
		if asm != nil {
			return asm, nil
		}
	}
	return nil, fmt.Errorf("no metadata at %s", joinAnd(urls))
}

const (
	stepProbe = "the first request to the remote MCP server"
	stepPRM   = "protected resource metadata"
	stepASM   = "authorization server metadata"
)

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
