package tokens

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

const (
	// refreshLease bounds how long one replica may hold a binding key's
	// refresh lock; a refresh takes one token request.
	refreshLease = 30 * time.Second
	// refreshTimeout bounds one refresh attempt, the wait for the lease
	// included. It is shorter than the lease, so an attempt never outlives
	// the lease it holds.
	refreshTimeout = 20 * time.Second
)

// due is where a token stands at a moment.
type due int

const (
	dueFresh   due = iota // used as it is
	dueWindow             // used, and refreshed in the background
	dueExpired            // a request waits for a refresh
)

// window is how long before its expiry t is refreshed: the refresh skew
// that fits its life (RefreshSkew).
func window(t *upstream.Token) time.Duration {
	issued := t.Issued
	if issued.IsZero() {
		issued = t.Acquired
	}
	return RefreshSkew(t.Expiry.Sub(issued))
}

// dueAt reports where t stands at now. A token without an expiry is used
// until the remote server refuses it.
func dueAt(t *upstream.Token, now time.Time) due {
	switch {
	case t.Expiry.IsZero():
		return dueFresh
	case !now.Before(t.Expiry):
		return dueExpired
	case now.Add(window(t)).Before(t.Expiry):
		return dueFresh
	}
	return dueWindow
}

// Token returns the upstream token under key; nil when there is none or it
// was withdrawn (the user must consent again). A token within its refresh
// window is returned at once and refreshed in the background; only an
// expired token makes the caller wait, for one refresh attempt. While the
// authorization server cannot be reached, the token is kept, and an
// expired one answers 502 (at once while the proxy waits before its next
// attempt).
func (s *Source) Token(ctx context.Context, key string) (*upstream.Token, error) {
	t, err := s.Records.Cached(ctx, key)
	if err != nil {
		return nil, storageError(err)
	}
	if t == nil {
		s.cache(ctx, metrics.CacheMiss)
		return nil, nil
	}
	now := s.Now()
	d := dueAt(t, now)
	if d == dueFresh {
		s.cache(ctx, metrics.CacheHit)
		return t, nil
	}
	s.cache(ctx, metrics.CacheRefresh)
	if d == dueWindow {
		if s.renewable(t) && s.streaks.startBehind(key, now) {
			s.behind.Go(func() {
				defer s.streaks.endBehind(key)
				_, _, _ = s.refreshes.Do(key, func() (any, error) { return s.attempt(ctx, key, t) })
			})
		}
		return t, nil
	}
	if err := s.streaks.waiting(key, now); err != nil {
		return nil, err
	}
	// A refresh that runs already, in the background or for another
	// request, is joined rather than repeated.
	select {
	case r := <-s.refreshes.DoChan(key, func() (any, error) { return s.attempt(ctx, key, t) }):
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*upstream.Token), nil
	case <-ctx.Done():
		return nil, expiredError(&t.Grant, ctx.Err())
	}
}

// cache counts a token cache lookup, and notes its result on the token
// step's span.
func (s *Source) cache(ctx context.Context, result metrics.CacheResult) {
	s.Metrics.TokenCache(s.Route.Key(), result)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.TokenCache.String(string(result)))
	}
}

// refreshed counts a refresh's result, and notes it on the refresh's span.
func (s *Source) refreshed(ctx context.Context, result metrics.RefreshResult) {
	s.Metrics.Refresh(s.Route.Key(), result)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.RefreshResult.String(string(result)))
	}
}

// renewable reports whether the proxy can renew t: with its refresh
// token, with the route's client credentials or workload token, or, on an
// enterprise route, with a new exchange.
func (s *Source) renewable(t *upstream.Token) bool {
	return t.RefreshToken != "" || s.clientCredentials() || s.workload() || s.enterprise()
}

func (s *Source) clientCredentials() bool {
	srv := s.Route.Server()
	return srv.Binding() == config.BindingServiceAccount && srv.ServiceAccount.ClientCredentials
}

// attempt is one refresh of the token under key, read as t, on a context
// of its own: the request that started it may end first, and a hung
// authorization server must not hold the lease for ever.
func (s *Source) attempt(ctx context.Context, key string, t *upstream.Token) (*upstream.Token, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	ctx, span := tracing.Start(ctx, tracing.SpanUpstreamRefresh, trace.SpanKindInternal)
	defer span.End()
	return s.refresh(ctx, key, t)
}

// refresh renews the token under key, which was t when it was read. One
// replica at a time holds the key's lease.
func (s *Source) refresh(ctx context.Context, key string, t *upstream.Token) (*upstream.Token, error) {
	unlock, err := s.Locks.Lock(ctx, "refresh:"+store.SecretKey(key), refreshLease)
	if err != nil {
		return nil, storageError(err)
	}
	defer unlock()
	// Another caller or replica may have refreshed while this one waited
	// for the lease: a token other than the one read before is that
	// refresh's result, and is used as it is.
	cur, err := s.Records.Get(ctx, key)
	if err != nil {
		return nil, storageError(err)
	}
	if cur == nil {
		s.streaks.drop(key)
		return nil, nil
	}
	if cur.AccessToken != t.AccessToken || dueAt(cur, s.Now()) == dueFresh {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(tracing.RefreshResult.String("joined"))
		}
		s.recovered(ctx, key, cur)
		return cur, nil
	}
	if s.clientCredentials() {
		next, err := s.ClientCredentials(ctx, &cur.Grant, key, cur.Subject)
		if err != nil {
			return nil, s.failed(ctx, key, cur, err.Err, err)
		}
		next.Acquired, next.Client = cur.Acquired, cur.Client
		return s.renewed(ctx, key, cur, next)
	}
	if s.workload() {
		next, err := s.JWTBearer(ctx, &cur.Grant, key, cur.Subject)
		if err != nil {
			return nil, s.failed(ctx, key, cur, err.Err, err)
		}
		next.Acquired, next.Client = cur.Acquired, cur.Client
		return s.renewed(ctx, key, cur, next)
	}
	if s.enterprise() {
		return s.reexchange(ctx, key, cur)
	}
	if cur.RefreshToken == "" {
		if s.Now().Before(cur.Expiry) {
			return cur, nil // no way to renew; use it while it lasts
		}
		return nil, s.Records.Delete(ctx, key)
	}
	k, e := s.ProofKey(&cur.Grant, cur.DPoPKey)
	if e != nil {
		return nil, s.failed(ctx, key, cur, e.Err, e)
	}
	tok, err := cur.Grant.Refresh(ctx, s.sender(k), cur.RefreshToken, s.Credentials.Auth(ctx, &cur.Grant), s.Now())
	if err != nil {
		if upstream.IsRefused(err) {
			s.streaks.drop(key)
			return nil, s.refused(ctx, key, cur, err)
		}
		return nil, s.failed(ctx, key, cur, err, expiredError(&cur.Grant, err))
	}
	next := *cur
	next.AccessToken, next.RefreshToken, next.Expiry, next.Issued = tok.AccessToken, tok.RefreshToken, tok.Expiry, s.Now()
	next.Scopes = GrantedScopes(tok, cur.Scopes)
	if tok.TokenType != "" {
		next.TokenType = tok.TokenType
	}
	if e := Bind(&next, k, &cur.Grant); e != nil {
		s.streaks.drop(key)
		return nil, s.refused(ctx, key, cur, e)
	}
	return s.renewed(ctx, key, cur, &next)
}

// renewed stores next, the renewal of cur under key, and ends the key's
// failure streak.
func (s *Source) renewed(ctx context.Context, key string, cur, next *upstream.Token) (*upstream.Token, error) {
	if err := s.Records.Put(ctx, key, next, time.Time{}); err != nil {
		return nil, storageError(err)
	}
	s.refreshed(ctx, metrics.RefreshSuccess)
	s.Log.Info("upstream token refreshed", event.TokenRefreshed.Attr(), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)))
	s.Audit.Try(ctx, cur.Subject, key, "token_refreshed", "allowed", nil)
	s.recovered(ctx, key, cur)
	return next, nil
}

// refused handles a refresh the authorization server refused (4xx): the
// token is dropped, so the user consents again.
func (s *Source) refused(ctx context.Context, key string, cur *upstream.Token, err error) error {
	if err := s.Records.Delete(ctx, key); err != nil {
		return storageError(err)
	}
	s.refreshed(ctx, metrics.RefreshRefused)
	msg := "the remote authorization server refused the refresh; the user must consent again"
	if s.enterprise() {
		// No consent on an enterprise route: the next connection signs in
		// and exchanges the new ID token.
		msg = "the identity provider or the remote authorization server refused the renewal; the user must sign in again"
	}
	s.Log.Info(msg, event.TokenRefreshRefused.Attr(), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
	s.Audit.Try(ctx, cur.Subject, key, "token_refresh_refused", "denied", nil)
	return nil
}

// failed handles a refresh that did not reach a usable answer (network,
// 5xx, timeout): the token is kept, the key waits before its next attempt,
// and the first failure of a streak is logged. reply is what a request
// whose token has expired gets until the next attempt.
func (s *Source) failed(ctx context.Context, key string, cur *upstream.Token, cause error, reply *apierror.Error) error {
	s.refreshed(ctx, metrics.RefreshFailed)
	if s.streaks.fail(key, s.Now(), cur, reply, s.jitter()) == 1 {
		s.Log.Warn("token refresh failed", event.TokenRefreshFailed.Attr(), slog.String("user", cur.Subject),
			slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)),
			slog.Any("error", cause))
	}
	return reply
}

// recovered ends the key's failure streak, if there is one, with one line.
func (s *Source) recovered(ctx context.Context, key string, cur *upstream.Token) {
	st, ok := s.streaks.end(key)
	if !ok {
		return
	}
	s.Log.Info("token refresh works again", event.TokenRefreshRecovered.Attr(), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)),
		slog.Int("failed_attempts", st.failures), slog.String("failed_for", s.Now().Sub(st.since).Round(time.Millisecond).String()))
}

// expiredError is the answer to a request whose token expired while the
// authorization server could not be reached.
func expiredError(g *upstream.Grant, cause error) *apierror.Error {
	return apierror.Wrap(cause, apierror.CodeASUnreachable,
		"Your token for the remote server expired and the remote authorization server %s could not be reached to refresh it. The token is kept; try again shortly.", ASName(g))
}

// Settle waits until the background refreshes started so far have ended.
// Tests call it; the request path never waits for one.
func (s *Source) Settle() { s.behind.Wait() }
