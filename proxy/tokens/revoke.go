package tokens

import (
	"context"
	"log/slog"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Revoke withdraws t: it revokes the refresh and the access token at the
// remote authorization server where it offers revocation (RFC 7009), then
// deletes t here whatever the answer. revoked reports whether the remote
// server confirmed both; the error is a store failure (nothing deleted).
func (s *Source) Revoke(ctx context.Context, t *upstream.Token) (revoked bool, err error) {
	auth := s.Credentials.Auth(ctx, &t.Grant)
	revoked = t.Grant.RevocationURL != ""
	// The refresh token first: it is the one that outlives the other.
	for _, v := range []struct{ value, hint string }{{t.RefreshToken, "refresh_token"}, {t.AccessToken, "access_token"}} {
		if err := t.Grant.Revoke(ctx, s.HTTP, v.value, v.hint, auth); err != nil {
			revoked = false
			s.Log.Warn("revocation failed; the token is deleted here anyway", event.TokenRevocationFailed.Attr(),
				slog.String("user", t.Subject), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
		}
	}
	if err := s.Drop(ctx, t.Key); err != nil {
		return false, storageError(err)
	}
	return revoked, nil
}
