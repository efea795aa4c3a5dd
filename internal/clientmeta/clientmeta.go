// Package clientmeta publishes the Client ID Metadata Documents of the
// conformance stack's MCP clients: what client.example.net serves. The
// in-process stack mounts Handler; the container stack runs it as the
// mockcimd binary, so both stacks serve byte-for-byte the same documents.
package clientmeta

import (
	"encoding/json"
	"net/http"
	"strings"
)

// MetadataURL is the metadata document of the MCP client called name,
// published at host: https://HOST/NAME/client-metadata.json.
func MetadataURL(host, name string) string {
	return "https://" + host + "/" + name + "/client-metadata.json"
}

// RedirectURL is the redirect URI of the MCP client called name.
func RedirectURL(host, name string) string {
	return "https://" + host + "/" + name + "/callback"
}

// Handler serves /NAME/client-metadata.json for every NAME: a public client
// (token_endpoint_auth_method none) whose redirect URI is RedirectURL.
func Handler(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/client-metadata.json")
		if !ok || name == "" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  MetadataURL(host, name),
			"client_name":                "MCP client " + name,
			"client_uri":                 "https://" + host + "/" + name,
			"redirect_uris":              []string{RedirectURL(host, name)},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	})
}
