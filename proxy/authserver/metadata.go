package authserver

import (
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
)

// protectedResourceMetadata serves RFC 9728 metadata for the resource at
// the path after the well-known prefix: /.well-known/oauth-protected-resource/mcp
// describes https://host/mcp, and the bare prefix describes https://host.
func (s *Server) protectedResourceMetadata(w http.ResponseWriter, r *http.Request) error {
	return pages.Document(w, r, true, map[string]any{
		"resource":                 s.origin + strings.TrimPrefix(r.URL.Path, PathPRM),
		"authorization_servers":    []string{s.origin},
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "MCP server at " + s.route + " (through mcp-proxy)",
	})
}

// authorizationServerMetadata serves RFC 8414 metadata: the proxy is the
// MCP client's authorization server. Only what the proxy has is listed (no
// jwks_uri: its tokens are opaque).
func (s *Server) authorizationServerMetadata(w http.ResponseWriter, r *http.Request) error {
	md := map[string]any{
		"issuer":                                           s.origin,
		"authorization_endpoint":                           s.origin + PathAuthorize,
		"token_endpoint":                                   s.origin + PathToken,
		"response_types_supported":                         []string{"code"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{clientid.AuthNone, clientid.AuthPrivateKeyJWT},
		"token_endpoint_auth_signing_alg_values_supported": clientid.SigningAlgs,
		"client_id_metadata_document_supported":            true,
		"authorization_response_iss_parameter_supported":   true,
	}
	if s.registrationEnabled() {
		md["registration_endpoint"] = s.origin + PathRegister
	}
	return pages.Document(w, r, true, md)
}
