// Package binding decides whose upstream token a request may carry
// (docs/token-binding.md): the binding key of a grant names it, by the
// route's mode. Keys are computed once, when a grant is made; on the
// request path the binding step only checks that the grant's key is one
// of this route's mode.
package binding

import (
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// Key names the upstream token of a grant: per_user by route, user and
// remote endpoint; per_session also by the MCP client's authorization;
// service_account by route and remote endpoint only.
func Key(mode config.BindingMode, route, subject, session, upstream string) string {
	base := Prefix(mode, route)
	switch mode {
	case config.BindingServiceAccount:
		return base + part(upstream)
	case config.BindingPerSession:
		return base + part(subject) + "\x00" + part(session) + "\x00" + part(upstream)
	default:
		return base + part(subject) + "\x00" + part(upstream)
	}
}

// UserPrefix starts the keys of one user's tokens on a route (none under
// service_account, where tokens belong to the route).
func UserPrefix(mode config.BindingMode, route, subject string) string {
	return Prefix(mode, route) + part(subject) + "\x00"
}

// escaper escapes the separator of binding keys, and the escape character
// itself, so that distinct values never make equal keys.
var escaper = strings.NewReplacer("\\", "\\\\", "\x00", "\\0")

func part(s string) string { return escaper.Replace(s) }

// Prefix starts every key of mode on route: a grant whose key lacks the
// prefix of the route's current mode was made under another mode.
func Prefix(mode config.BindingMode, route string) string {
	return string(mode) + "\x00" + route + "\x00"
}

// OfRoute reports whether key names a token of route under mode ("" names
// none, and is of every mode).
func OfRoute(key string, mode config.BindingMode, route string) bool {
	return key == "" || strings.HasPrefix(key, Prefix(mode, route))
}

// Resolve is the binding step: it takes the binding key of the request's
// grant and records it in the request scope for the token step. A grant
// made under another binding mode (the operator changed the route's
// upstream_token_binding since) gets the route's 401 challenge, so the MCP
// client authorizes again under the current mode; its key is never used.
func Resolve(rc *config.Route, rs *apierror.Responder, next http.Handler) http.Handler {
	mode, route := rc.Server().Binding(), rc.Key()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := request.From(r.Context())
		if sc == nil || sc.Grant == nil {
			rs.Write(w, r, apierror.New(apierror.CodeInternal, "The request reached the binding step without a grant."))
			return
		}
		if !OfRoute(sc.Grant.BindingKey, mode, route) {
			rs.Write(w, r, apierror.Challenge(rc.MetadataURL(r.URL.Path), "invalid_token",
				"the route's upstream_token_binding changed since this token was issued; authorize again"))
			return
		}
		sc.BindingKey = sc.Grant.BindingKey
		next.ServeHTTP(w, r)
	})
}
