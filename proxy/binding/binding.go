// Package binding decides whose upstream token a request may carry
// (docs/token-binding.md): the binding key of a grant names it, by the
// route's mode. Keys are computed once, when a grant is made; on the
// request path the binding step only checks that the grant's key is one
// of this route's mode.
package binding

import (
	"context"
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
)

// Key names the upstream token of a grant: per_user by route, user and
// remote endpoint; per_session also by the MCP client's authorization;
// service_account by route and remote endpoint only.
func Key(mode config.BindingMode, route, subject, session, upstream string) string {
	base := string(mode) + "\x00" + route + "\x00"
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
	return string(mode) + "\x00" + route + "\x00" + part(subject) + "\x00"
}

// escaper escapes the separator of binding keys, and the escape character
// itself, so that distinct values never make equal keys.
var escaper = strings.NewReplacer("\\", "\\\\", "\x00", "\\0")

func part(s string) string { return escaper.Replace(s) }

// KeyFromContext returns the binding key [Resolve] stored: "" when the
// request's grant needs no upstream token.
func KeyFromContext(ctx context.Context) string { return bearer.BindingKey(ctx) }

// Resolve is the binding step: it takes the binding key of the request's
// grant (stored by bearer.Require) and serves next with it, refusing a key
// that is not of this route and mode.
func Resolve(mode config.BindingMode, route string, rs *apierror.Responder, next http.Handler) http.Handler {
	prefix := string(mode) + "\x00" + route + "\x00"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := bearer.GrantFromContext(r.Context())
		if g == nil {
			rs.Write(w, r, apierror.New(apierror.CodeInternal, http.StatusInternalServerError, "The request reached the binding step without a grant."))
			return
		}
		if g.BindingKey == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(g.BindingKey, prefix) {
			rs.Write(w, r, apierror.New(apierror.CodeInternal, http.StatusInternalServerError,
				"The grant's token binding is not this route's; the proxy did not forward the request."))
			return
		}
		// The key rides the grant's context value: no request copy.
		bearer.SetBindingKey(r.Context(), g.BindingKey)
		next.ServeHTTP(w, r)
	})
}
