package pages

import (
	"encoding/json"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
)

// documentMaxAge is how long clients may cache the proxy's public metadata
// documents.
const documentMaxAge = "public, max-age=3600"

// JSON writes a JSON answer.
func JSON(w http.ResponseWriter, status int, cacheControl string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Document serves one of the proxy's public metadata documents (RFC 9728,
// RFC 8414, a Client ID Metadata Document): GET and HEAD, a CORS preflight,
// which it answers itself, and readable from any origin when cors is set.
func Document(w http.ResponseWriter, r *http.Request, cors bool, v any) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		w.WriteHeader(http.StatusNoContent)
		return nil
	default:
		return apierror.MethodNotAllowed(r, http.MethodGet)
	}
	if cors {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	JSON(w, http.StatusOK, documentMaxAge, v)
	return nil
}
