package tokens

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
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
func (t *Token) window() time.Duration {
	issued := t.Issued
	if issued.IsZero() {
		issued = t.Acquired
	}
	return RefreshSkew(t.Expiry.Sub(issued))
}

// due reports where t stands at now. A token without an expiry is used
// until the remote server refuses it.
func (t *Token) due(now time.Time) due {
	switch {
	case t.Expiry.IsZero():
		return dueFresh
	case !now.Before(t.Expiry):
		return dueExpired
	case now.Add(t.window()).Before(t.Expiry):
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
func (s *Source) Token(ctx context.Context, key string) (*Token, error) {
	t, err := s.Records.Cached(ctx, key)
	if err != nil {
		return nil, storageError(err)
	}
	route := s.Route.Key()
	if t == nil {
		s.Metrics.TokenCache(route, metrics.CacheMiss)
		return nil, nil
	}
	now := s.Now()
	d := t.due(now)
	if d == dueFresh {
		s.Metrics.TokenCache(route, metrics.CacheHit)
		return t, nil
	}
	s.Metrics.TokenCache(route, metrics.CacheRefresh)
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
		return r.Val.(*Token), nil
	case <-ctx.Done():
		return nil, expiredError(&t.Grant, ctx.Err())
	}
}

// renewable reports whether the proxy can renew t: with its refresh
// token, or with the route's client credentials.
func (s *Source) renewable(t *Token) bool { return t.RefreshToken != "" || s.clientCredentials() }

func (s *Source) clientCredentials() bool {
	srv := s.Route.Server()
	return srv.Binding() == config.BindingServiceAccount && srv.ServiceAccount.ClientCredentials
}

// attempt is one refresh of the token under key, read as t, on a context
// of its own: the request that started it may end first, and a hung
// authorization server must not hold the lease for ever.
func (s *Source) attempt(ctx context.Context, key string, t *Token) (*Token, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	return s.refresh(ctx, key, t)
}

// refresh renews the token under key, which was t when it was read. One
// replica at a time holds the key's lease.
func (s *Source) refresh(ctx context.Context, key string, t *Token) (*Token, error) {
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
	if cur.AccessToken != t.AccessToken || cur.due(s.Now()) == dueFresh {
		s.recovered(ctx, key, cur)
		return cur, nil
	}
	if s.clientCredentials() {
		if err := s.ClientCredentials(ctx, &cur.Grant, key, cur.Subject); err != nil {
			if err.Code == apierror.CodeStorageUnavailable {
				return nil, err
			}
			return nil, s.failed(ctx, key, cur, err.Err, err)
		}
		s.Metrics.Refresh(s.Route.Key(), metrics.RefreshSuccess)
		s.recovered(ctx, key, cur)
		next, err := s.Records.Get(ctx, key)
		if err != nil {
			return nil, storageError(err)
		}
		return next, nil
	}
	if cur.RefreshToken == "" {
		if s.Now().Before(cur.Expiry) {
			return cur, nil // no way to renew; use it while it lasts
		}
		return nil, s.Records.Delete(ctx, key)
	}
	tok, err := cur.Grant.Refresh(ctx, s.HTTP, cur.RefreshToken, s.Secret(ctx, &cur.Grant), s.Now())
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
	if err := s.Records.Put(ctx, key, &next, time.Time{}); err != nil {
		return nil, storageError(err)
	}
	s.Metrics.Refresh(s.Route.Key(), metrics.RefreshSuccess)
	s.Log.Info("upstream token refreshed", slog.String("event", "token_refreshed"), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)))
	s.Audit.Try(ctx, cur.Subject, key, "token_refreshed", "allowed", nil)
	s.recovered(ctx, key, cur)
	return &next, nil
}

// refused handles a refresh the authorization server refused (4xx): the
// token is dropped, so the user consents again.
func (s *Source) refused(ctx context.Context, key string, cur *Token, err error) error {
	if err := s.Records.Delete(ctx, key); err != nil {
		return storageError(err)
	}
	s.Metrics.Refresh(s.Route.Key(), metrics.RefreshRefused)
	s.Log.Info("the remote authorization server refused the refresh; the user must consent again",
		slog.String("event", "token_refresh_refused"), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
	s.Audit.Try(ctx, cur.Subject, key, "token_refresh_refused", "denied", nil)
	return nil
}

// failed handles a refresh that did not reach a usable answer (network,
// 5xx, timeout): the token is kept, the key waits before its next attempt,
// and the first failure of a streak is logged. reply is what a request
// whose token has expired gets until the next attempt.
func (s *Source) failed(ctx context.Context, key string, cur *Token, cause error, reply *apierror.Error) error {
	s.Metrics.Refresh(s.Route.Key(), metrics.RefreshFailed)
	if s.streaks.fail(key, s.Now(), cur, reply, s.jitter()) == 1 {
		s.Log.Warn("token refresh failed", slog.String("event", "token_refresh_failed"), slog.String("user", cur.Subject),
			slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)),
			slog.Any("error", cause))
	}
	return reply
}

// recovered ends the key's failure streak, if there is one, with one line.
func (s *Source) recovered(ctx context.Context, key string, cur *Token) {
	st, ok := s.streaks.end(key)
	if !ok {
		return
	}
	s.Log.Info("token refresh works again", slog.String("event", "token_refresh_recovered"), slog.String("user", cur.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("request_id", apierror.RequestID(ctx)),
		slog.Int("failed_attempts", st.failures), slog.String("failed_for", s.Now().Sub(st.since).Round(time.Millisecond).String()))
}

// expiredError is the answer to a request whose token expired while the
// authorization server could not be reached.
func expiredError(g *upstream.Grant, cause error) *apierror.Error {
	return apierror.Wrap(cause, apierror.CodeASUnreachable, http.StatusBadGateway,
		"Your token for the remote server expired and the remote authorization server %s could not be reached to refresh it. The token is kept; try again shortly.", ASName(g))
}

// Settle waits until the background refreshes started so far have ended.
// Tests call it; the request path never waits for one.
func (s *Source) Settle() { s.behind.Wait() }
