// Package clientmeta publishes the Client ID Metadata Documents of the
// conformance stack's MCP clients: what client.example.net serves. The
// in-process stack mounts Handler; the container stack runs it as the
// mockcimd binary, so both stacks serve byte-for-byte the same documents.
package clientmeta

import (
	"encoding/json"
	"fmt"
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
// (token_endpoint_auth_method none) whose redirect URI is RedirectURL. The
// redirect URI itself shows, as plain text, the parameters the
// authorization server sent there, so that a person trying the stack in a
// browser can copy the code into a token request (harness clients read
// the redirect before following it).
func Handler(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/callback"); ok && name != "" && !strings.Contains(name, "/") {
			callback(w, r)
			return
		}
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

// callback shows what the authorization server sent the client: the code,
// state and issuer, or the error.
func callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	for _, k := range []string{"code", "state", "iss", "error", "error_description"} {
		if v := q.Get(k); v != "" {
			fmt.Fprintf(w, "%s=%s\n", k, v)
		}
	}
}
