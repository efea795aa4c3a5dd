// Package clientmeta publishes the Client ID Metadata Documents of the
// conformance stack's MCP clients: what client.example.net serves. The
// in-process stack mounts Handler; the container stack runs it as the
// mockcimd binary, so both stacks serve byte-for-byte the same documents.
//
// The name of a client picks its kind of document (see Document): a public
// client by default, a private_key_jwt client for names ending in -pkjwt
// (keys at a jwks_uri) or -pkjwt-inline (keys in the document's jwks), its
// keys derived from the run's key seed, so the harness and mockcimd agree
// without sharing a file; a native client that receives its answers on a
// loopback port for names loopback-PORT (as the official MCP conformance
// suite's authorization mode does, on http://127.0.0.1:PORT/callback); and
// for names starting with refuse- one of the documents the proxy must
// refuse. POST /NAME/rotate rotates a private_key_jwt client's key
// (RotatedKey).
package clientmeta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

// JWKSURL is where a private_key_jwt client called name publishes its keys.
func JWKSURL(host, name string) string {
	return "https://" + host + "/" + name + "/jwks.json"
}

// LoopbackName is the name of the client whose redirect URI is
// LoopbackRedirectURL(port).
func LoopbackName(port int) string { return "loopback-" + strconv.Itoa(port) }

// LoopbackRedirectURL is the redirect URI of a native client that listens
// on a loopback port (RFC 8252 §7.3).
func LoopbackRedirectURL(port int) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/callback"
}

// LoopbackPort reports the port of a client called loopback-PORT.
func LoopbackPort(name string) (int, bool) {
	p, ok := strings.CutPrefix(name, "loopback-")
	if !ok {
		return 0, false
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != p {
		return 0, false
	}
	return port, true
}

// PrivateKeyJWT reports whether the client called name authenticates with
// private_key_jwt.
func PrivateKeyJWT(name string) bool { return strings.HasSuffix(name, "-pkjwt") || InlineKeys(name) }

// InlineKeys reports whether the client called name publishes its keys in
// its document (jwks) rather than at a jwks_uri.
func InlineKeys(name string) bool { return strings.HasSuffix(name, "-pkjwt-inline") }

// refusals are the documents the proxy must refuse, by client name: each
// breaks one rule of the docs' "Which MCP clients connect" page.
func refusals(host, name string) map[string]map[string]any {
	cb := RedirectURL(host, name)
	return map[string]map[string]any{
		"refuse-javascript":     {"redirect_uris": []string{"javascript:alert(document.domain)"}},
		"refuse-data":           {"redirect_uris": []string{"data:text/html,<script>alert(document.domain)</script>"}},
		"refuse-file":           {"redirect_uris": []string{"file:///etc/passwd"}},
		"refuse-fragment":       {"redirect_uris": []string{cb + "#fragment"}},
		"refuse-userinfo":       {"redirect_uris": []string{"https://user:secret@" + host + "/" + name + "/callback"}},
		"refuse-http":           {"redirect_uris": []string{"http://" + host + "/" + name + "/callback"}},
		"refuse-private-scheme": {"redirect_uris": []string{"net.example.client:/callback"}},
		"refuse-no-jwks":        {"token_endpoint_auth_method": "private_key_jwt"},
		"refuse-both-jwks":      {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": JWKSURL(host, name), "jwks": map[string]any{"keys": []any{}}},
	}
}

// Document is the metadata document of the client called name, signed
// with keys from seed, before any rotation.
func Document(host, seed, name string) (map[string]any, error) {
	return documentAt(host, seed, name, 0)
}

// documentAt is the document after gen rotations of the client's key.
func documentAt(host, seed, name string, gen int) (map[string]any, error) {
	doc := map[string]any{
		"client_id":                  MetadataURL(host, name),
		"client_name":                "MCP client " + name,
		"client_uri":                 "https://" + host + "/" + name,
		"redirect_uris":              []string{RedirectURL(host, name)},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	switch {
	case InlineKeys(name):
		set, err := PublicKeys(seed, name, gen)
		if err != nil {
			return nil, err
		}
		doc["token_endpoint_auth_method"] = "private_key_jwt"
		doc["jwks"] = set
	case PrivateKeyJWT(name):
		doc["token_endpoint_auth_method"] = "private_key_jwt"
		doc["jwks_uri"] = JWKSURL(host, name)
	}
	if port, ok := LoopbackPort(name); ok {
		doc["redirect_uris"] = []string{LoopbackRedirectURL(port)}
	}
	if strings.HasPrefix(name, "refuse-") {
		change, ok := refusals(host, name)[name]
		if !ok {
			return nil, fmt.Errorf("no refused document is called %q", name)
		}
		for k, v := range change {
			doc[k] = v
		}
	}
	return doc, nil
}

// Handler serves, for every NAME, /NAME/client-metadata.json (the
// client's Document), /NAME/jwks.json for a private_key_jwt client, and
// /NAME/callback, its redirect URI, which shows as plain text the
// parameters the authorization server sent there, so that a person trying
// the stack in a browser can copy the code into a token request (harness
// clients read the redirect before following it). seed derives the
// clients' keys (see SigningKey); the stack makes one per run.
func Handler(host, seed string) http.Handler {
	var mu sync.Mutex
	gens := map[string]int{} // rotations, by client name
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if !ok || name == "" || strings.Contains(file, "/") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		gen := gens[name]
		if file == "rotate" && r.Method == http.MethodPost && PrivateKeyJWT(name) {
			gens[name]++
		}
		mu.Unlock()
		var body any
		var err error
		switch {
		case file == "callback":
			callback(w, r)
			return
		case file == "rotate" && r.Method == http.MethodPost && PrivateKeyJWT(name):
			w.WriteHeader(http.StatusNoContent)
			return
		case file == "client-metadata.json":
			body, err = documentAt(host, seed, name, gen)
		case file == "jwks.json" && PrivateKeyJWT(name) && !InlineKeys(name):
			body, err = PublicKeys(seed, name, gen)
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(body)
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
