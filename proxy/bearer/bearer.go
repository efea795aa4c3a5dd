// Package bearer is the proxy's resource server side towards MCP clients:
// it issues the opaque access tokens the downstream authorization server
// hands out, and checks them on every request as middleware that starts
// the request scope (RFC 6750).
package bearer

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// NSAccess holds access tokens, by the hash of the token.
const NSAccess store.Namespace = "access"

// AccessTokenPrefix starts every access token the proxy issues.
const AccessTokenPrefix = "mcpp_at_"

// AccessToken is a downstream access token, stored by hash.
type AccessToken struct {
	Grant   *request.Grant
	Expires time.Time
}

// Tokens issues and checks access tokens.
type Tokens struct {
	Records store.Records[AccessToken]
	Now     func() time.Time
}

// Issue stores a new access token for g, valid for ttl, and returns it.
func (t *Tokens) Issue(ctx context.Context, g *request.Grant, ttl time.Duration) (string, error) {
	tok := AccessTokenPrefix + store.NewSecret(32)
	exp := t.Now().Add(ttl)
	if err := t.Records.Put(ctx, store.SecretKey(tok), &AccessToken{Grant: g, Expires: exp}, exp); err != nil {
		return "", err
	}
	return tok, nil
}

// Check returns the grant of a live access token issued on route, or nil
// when the token is unknown, expired or another route's.
func (t *Tokens) Check(ctx context.Context, route, token string) (*request.Grant, error) {
	at, err := t.Records.Cached(ctx, store.SecretKey(token))
	if err != nil || at == nil {
		return nil, err
	}
	if !t.Now().Before(at.Expires) || at.Grant == nil || at.Grant.Route != route {
		return nil, nil
	}
	return at.Grant, nil
}

// Require is the first step of the request path: it checks the request's
// bearer token and serves next with the request scope (request.From) in
// the context, holding the grant and its user; a request without a good
// token gets the 401 challenge that points the MCP client at the route's
// protected resource metadata. A store failure answers 503.
func Require(t *Tokens, rc *config.Route, rs *apierror.Responder, next http.Handler) http.Handler {
	route := rc.Key()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := FromHeader(r)
		if tok == "" {
			rs.Write(w, r, apierror.Challenge(rc.MetadataURL(r.URL.Path), "", ""))
			return
		}
		g, err := t.Check(r.Context(), route, tok)
		if err != nil {
			rs.Write(w, r, apierror.Storage(err))
			return
		}
		if g == nil {
			rs.Write(w, r, apierror.Challenge(rc.MetadataURL(r.URL.Path), "invalid_token", "the token is unknown or expired; authorize again"))
			return
		}
		sc := &request.Scope{Grant: g, Identity: g.User()}
		next.ServeHTTP(w, r.WithContext(request.With(r.Context(), sc)))
	})
}

// FromHeader returns the bearer token of r, or "".
func FromHeader(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
