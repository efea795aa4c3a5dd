package tokens

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Inject is the token step of the request path: it asks the source for the
// token of the binding key the binding step recorded in the request scope
// and records the token there for forwarding. A request whose token is
// gone gets the route's challenge, so its MCP client authorizes again.
// Every use of a service account's shared token is audited with the acting
// user; a request that cannot be audited is not forwarded.
func (s *Source) Inject(rs *apierror.Responder, next http.Handler) http.Handler {
	shared := s.Route.Server().Binding() == config.BindingServiceAccount
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := request.From(r.Context())
		if sc == nil || sc.BindingKey == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, span := tracing.Start(r.Context(), tracing.SpanUpstreamToken, trace.SpanKindInternal)
		if span.IsRecording() {
			span.SetAttributes(tracing.Binding.String(string(s.Route.Server().Binding())))
		}
		t, err := s.Token(ctx, sc.BindingKey)
		span.End()
		if err != nil {
			rs.Write(w, r, err)
			return
		}
		if t == nil {
			rs.Write(w, r, apierror.Challenge(s.Route.MetadataURL(r.URL.Path), "invalid_token",
				"the remote server's authorization is missing or was withdrawn; authorize again"))
			return
		}
		if shared {
			if err := s.Audit.Record(r.Context(), sc.Identity.Subject, sc.BindingKey, "upstream_request", "allowed", nil); err != nil {
				rs.Write(w, r, apierror.Wrap(err, apierror.CodeInternal,
					"The audit log cannot be written, so the shared connection is not used. Try again shortly."))
				return
			}
		}
		sc.Token = t
		next.ServeHTTP(w, r)
	})
}

// Rejected handles the remote server's 401 to a token: the token is
// dropped, so the next authorization consents again. A token that a
// refresh replaced meanwhile is kept: the 401 was for the one before it.
func (s *Source) Rejected(ctx context.Context, t *upstream.Token) {
	if cur, err := s.Records.Get(ctx, t.Key); err == nil && cur != nil && cur.AccessToken != t.AccessToken {
		return
	}
	_ = s.Records.Delete(ctx, t.Key)
	s.Log.Info("the remote server refused the upstream token; dropped it",
		event.TokenRejected.Attr(), slog.String("user", t.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)))
}

// StepUp notes that the remote server asked for more scope (403
// insufficient_scope) and returns the scopes the next authorization asks
// for and how many step-ups in a row this is.
func (s *Source) StepUp(ctx context.Context, t *upstream.Token, scopes []string) ([]string, int) {
	cur := s.current(ctx, t)
	next := *cur
	next.NeedScopes = UnionScopes(cur.Scopes, cur.NeedScopes, scopes)
	next.StepUps++
	_ = s.Records.Put(ctx, t.Key, &next, time.Time{})
	s.Log.Info("the remote server asked for more scope", event.ScopeStepUp.Attr(),
		slog.String("user", t.Subject), slog.String("binding", string(s.Route.Server().Binding())), slog.Any("scopes", next.NeedScopes),
		slog.Int("attempt", next.StepUps), slog.String("request_id", apierror.RequestID(ctx)))
	return next.NeedScopes, next.StepUps
}

// Answered notes a successful answer to a request with t: a step-up count
// starts again.
func (s *Source) Answered(ctx context.Context, t *upstream.Token) {
	next := *s.current(ctx, t)
	next.StepUps, next.NeedScopes = 0, nil
	_ = s.Records.Put(ctx, t.Key, &next, time.Time{})
}

// current is the stored token of t's key when a refresh replaced t while
// its request was in flight, else t: a note written from t would put back
// the access and refresh tokens the refresh replaced.
func (s *Source) current(ctx context.Context, t *upstream.Token) *upstream.Token {
	if cur, err := s.Records.Get(ctx, t.Key); err == nil && cur != nil && cur.AccessToken != t.AccessToken {
		return cur
	}
	return t
}
