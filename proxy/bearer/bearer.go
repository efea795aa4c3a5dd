// Package bearer is the proxy's resource server side towards MCP clients:
// it issues the opaque access tokens the downstream authorization server
// hands out, and checks them on every request as middleware that puts the
// grant behind a context accessor (RFC 6750).
package bearer

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// NSAccess holds access tokens, by the hash of the token.
const NSAccess store.Namespace = "access"

// AccessTokenPrefix starts every access token the proxy issues.
const AccessTokenPrefix = "mcpp_at_"

// Grant is what the proxy issued to one MCP client for one user: the
// downstream access and refresh tokens point at it.
type Grant struct {
	ID       string
	Route    string
	Subject  string
	ClientID string
	Resource string
	Scope    string
	// BindingKey names the upstream token this grant's requests use. It is
	// computed once, when the grant is made, so the request path needs no
	// work to find it. Empty: the remote server needs no authorization.
	BindingKey string
	// Upstream is the remote MCP endpoint the grant's resource maps to.
	Upstream string
	Created  time.Time
}

// AccessToken is a downstream access token, stored by hash.
type AccessToken struct {
	Grant   *Grant
	Expires time.Time
}

// Tokens issues and checks access tokens.
type Tokens struct {
	Records store.Records[AccessToken]
	Now     func() time.Time
}

// Issue stores a new access token for g, valid for ttl, and returns it.
func (t *Tokens) Issue(ctx context.Context, g *Grant, ttl time.Duration) (string, error) {
	tok := AccessTokenPrefix + store.NewSecret(32)
	exp := t.Now().Add(ttl)
	if err := t.Records.Put(ctx, store.SecretKey(tok), &AccessToken{Grant: g, Expires: exp}, exp); err != nil {
		return "", err
	}
	return tok, nil
}

// Check returns the grant of a live access token issued on route, or nil
// when the token is unknown, expired or another route's.
func (t *Tokens) Check(ctx context.Context, route, token string) (*Grant, error) {
	at, err := t.Records.Cached(ctx, store.SecretKey(token))
	if err != nil || at == nil {
		return nil, err
	}
	if !t.Now().Before(at.Expires) || at.Grant == nil || at.Grant.Route != route {
		return nil, nil
	}
	return at.Grant, nil
}

type ctxKey struct{}

// state is what the request path knows about a request once its bearer
// token checked out: the grant, and the binding key the binding step
// settled on. One context value holds both, so the binding step adds no
// copy of the request of its own.
type state struct {
	grant *Grant
	key   string
}

// GrantFromContext returns the grant [Require] stored, or nil.
func GrantFromContext(ctx context.Context) *Grant {
	if s, _ := ctx.Value(ctxKey{}).(*state); s != nil {
		return s.grant
	}
	return nil
}

// SetBindingKey records key as the binding key of the request whose
// context is ctx (the binding step calls it once it has checked the key);
// it reports false when ctx holds no grant. A request is served by one
// goroutine at a time, so the record needs no lock.
func SetBindingKey(ctx context.Context, key string) bool {
	s, _ := ctx.Value(ctxKey{}).(*state)
	if s == nil {
		return false
	}
	s.key = key
	return true
}

// BindingKey returns the key [SetBindingKey] recorded, or "".
func BindingKey(ctx context.Context) string {
	if s, _ := ctx.Value(ctxKey{}).(*state); s != nil {
		return s.key
	}
	return ""
}

// Require checks the request's bearer token and serves next with its grant
// in the context; a request without a good token gets the 401 challenge
// that points the MCP client at the route's protected resource metadata.
// A store failure answers 503.
func Require(t *Tokens, route string, metadataURL func(path string) string, rs *apierror.Responder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := FromHeader(r)
		if tok == "" {
			rs.Write(w, r, Challenge(metadataURL(r.URL.Path), "", ""))
			return
		}
		g, err := t.Check(r.Context(), route, tok)
		if err != nil {
			rs.Write(w, r, StorageError(err))
			return
		}
		if g == nil {
			rs.Write(w, r, Challenge(metadataURL(r.URL.Path), "invalid_token", "the token is unknown or expired; authorize again"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &state{grant: g})))
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

// Challenge is the 401 answer that sends an MCP client to authorize
// (RFC 9728 §5.1): resource_metadata names the proxy's own metadata, never
// the remote server's. errCode and desc, when set, say why the token
// failed (RFC 6750 §3.1).
func Challenge(metadataURL, errCode, desc string) *apierror.Error {
	h := fmt.Sprintf(`Bearer resource_metadata="%s"`, metadataURL)
	msg := "This MCP server needs authorization: run the OAuth flow that the WWW-Authenticate header points to."
	if errCode != "" {
		h += fmt.Sprintf(`, error="%s", error_description="%s"`, errCode, desc)
		msg = desc
	}
	return &apierror.Error{Code: apierror.CodeUnauthorized, Status: http.StatusUnauthorized, Message: msg,
		Header: http.Header{"Www-Authenticate": {h}}}
}

// StorageError is the answer to a request whose store operation failed.
func StorageError(err error) *apierror.Error {
	return apierror.Wrap(err, apierror.CodeStorageUnavailable, http.StatusServiceUnavailable,
		"The proxy's token store cannot be reached; nothing was changed. Try again shortly.")
}
