package authserver

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
)

// metadataGET admits the methods of a metadata document: GET and HEAD,
// and a CORS preflight, which it answers itself (false: nothing more to
// write).
func metadataGET(w http.ResponseWriter, r *http.Request) (bool, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true, nil
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		w.WriteHeader(http.StatusNoContent)
		return false, nil
	}
	return false, apierror.MethodNotAllowed(r, http.MethodGet)
}

// writeJSON writes a JSON answer.
func writeJSON(w http.ResponseWriter, status int, cacheControl string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// protectedResourceMetadata serves RFC 9728 metadata for the resource at
// the path after the well-known prefix: /.well-known/oauth-protected-resource/mcp
// describes https://host/mcp, and the bare prefix describes https://host.
func (s *Server) protectedResourceMetadata(w http.ResponseWriter, r *http.Request) error {
	if ok, err := metadataGET(w, r); !ok {
		return err
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, metadataMaxAge, map[string]any{
		"resource":                 s.origin + strings.TrimPrefix(r.URL.Path, PathPRM),
		"authorization_servers":    []string{s.origin},
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "MCP server at " + s.route + " (through mcp-proxy)",
	})
	return nil
}

// authorizationServerMetadata serves RFC 8414 metadata: the proxy is the
// MCP client's authorization server. Only what the proxy has is listed (no
// jwks_uri: its tokens are opaque).
func (s *Server) authorizationServerMetadata(w http.ResponseWriter, r *http.Request) error {
	if ok, err := metadataGET(w, r); !ok {
		return err
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
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
	writeJSON(w, http.StatusOK, metadataMaxAge, md)
	return nil
}

// clientMetadata serves the route's own Client ID Metadata Document.
func (s *Server) clientMetadata(w http.ResponseWriter, r *http.Request) error {
	if ok, err := metadataGET(w, r); !ok {
		return err
	}
	writeJSON(w, http.StatusOK, metadataMaxAge, s.o.Flow.ClientMetadata())
	return nil
}
