// Package tokens is the proxy's source of upstream tokens, in the habit of
// x/oauth2's TokenSource: the request path asks for the token of a binding
// key and never knows how it was made. The source serves cached tokens,
// refreshes them (one refresh at a time per key, across replicas through a
// lease in the store), gets service accounts' tokens with the client
// credentials grant, and keeps the step-up state the remote server asked
// for.
package tokens

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// NSUpstream holds upstream tokens, by binding key.
const NSUpstream store.Namespace = "upstream"

// RefreshSkew is how long before its expiry an upstream token is
// refreshed at most, so a request never carries a token that expires in
// flight. A token that lives a few minutes or less is refreshed a quarter
// of its life before expiry (upstream.RefreshSkew): a fixed minute would
// renew a token of a minute on every request.
const RefreshSkew = upstream.MaxRefreshSkew

// refreshLease bounds how long one replica may hold a binding key's refresh
// lock; a refresh takes one token request.
const refreshLease = 30 * time.Second

// Token is a token from a remote authorization server, with what is needed
// to refresh it.
type Token struct {
	Key          string
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero: the server did not say
	Grant        upstream.Grant
	Subject      string // the user the token was acquired for
	Client       string // the MCP client whose authorization acquired it
	Acquired     time.Time
	// Issued is when the current access token was issued (acquired or
	// last refreshed); with Expiry it gives the token's life.
	Issued time.Time
	// Scopes were granted (the token response's scope, else those asked for).
	Scopes []string
	// NeedScopes are the scopes the remote server asked for in a 403
	// insufficient_scope challenge; the next authorization asks for them.
	NeedScopes []string
	// StepUps counts insufficient_scope challenges since the last answer
	// that was not one; it bounds the step-up loop.
	StepUps int
}

// NeedsMoreScope reports whether the remote server asked for scopes the
// token does not have.
func (t *Token) NeedsMoreScope() bool {
	for _, s := range t.NeedScopes {
		if !slices.Contains(t.Scopes, s) {
			return true
		}
	}
	return false
}

// Source is one route's source of upstream tokens.
type Source struct {
	Route   *config.Route
	Records store.Records[Token]
	// Locks holds the refresh leases (the store's backend).
	Locks   store.Backend
	HTTP    *http.Client
	Now     func() time.Time
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Audit   *audit.Recorder
	// Secret returns the client secret of a grant's client ("" for a
	// public client).
	Secret func(ctx context.Context, g *upstream.Grant) string

	refreshes singleflight.Group
}

// Get reads the token under key; nil when there is none.
func (s *Source) Get(ctx context.Context, key string) (*Token, error) { return s.Records.Get(ctx, key) }

// Put stores a token under its key.
func (s *Source) Put(ctx context.Context, t *Token) error {
	return s.Records.Put(ctx, t.Key, t, time.Time{})
}

// Drop deletes the token under key.
func (s *Source) Drop(ctx context.Context, key string) error { return s.Records.Delete(ctx, key) }

// List returns the tokens whose keys start with prefix, sorted by key.
func (s *Source) List(ctx context.Context, prefix string) ([]*Token, error) {
	toks, err := s.Records.Scan(ctx, prefix)
	slices.SortFunc(toks, func(a, b *Token) int { return strings.Compare(a.Key, b.Key) })
	return toks, err
}

// fresh reports whether t is used as it is at now: it does not expire, or
// not within the skew that fits its life.
func (t *Token) fresh(now time.Time) bool {
	if t.Expiry.IsZero() {
		return true
	}
	issued := t.Issued
	if issued.IsZero() {
		issued = t.Acquired
	}
	return now.Add(upstream.RefreshSkew(t.Expiry.Sub(issued))).Before(t.Expiry)
}

// Token returns the upstream token under key, refreshed when it expires
// within the skew that fits its life (RefreshSkew at most); nil when there is none or it was withdrawn (the user
// must consent again). An unreachable authorization server keeps the
// token and answers 502.
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
	if t.fresh(s.Now()) {
		s.Metrics.TokenCache(route, metrics.CacheHit)
		return t, nil
	}
	s.Metrics.TokenCache(route, metrics.CacheRefresh)
	v, err, _ := s.refreshes.Do(key, func() (any, error) {
		return s.refresh(context.WithoutCancel(ctx), key, t)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Token), nil
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
	if cur == nil || cur.AccessToken != t.AccessToken || cur.fresh(s.Now()) {
		return cur, nil
	}
	srv := s.Route.Server()
	if srv.Binding() == config.BindingServiceAccount && srv.ServiceAccount.ClientCredentials {
		if err := s.ClientCredentials(ctx, &cur.Grant, key, cur.Subject); err != nil {
			return nil, err
		}
		return s.Records.Get(ctx, key)
	}
	if cur.RefreshToken == "" {
		if s.Now().Before(cur.Expiry) {
			return cur, nil // no way to renew; use it while it lasts
		}
		return nil, s.Records.Delete(ctx, key)
	}
	tok, err := cur.Grant.Refresh(ctx, s.HTTP, cur.RefreshToken, s.Secret(ctx, &cur.Grant), s.Now())
	if err != nil {
		return nil, s.refreshFailed(ctx, key, cur, err)
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
		slog.String("binding", string(srv.Binding())), slog.String("request_id", apierror.RequestID(ctx)))
	s.Audit.Try(ctx, cur.Subject, key, "token_refreshed", "allowed", nil)
	return &next, nil
}

// refreshFailed handles a failed refresh: refused (4xx) drops the token,
// so the user consents again; anything else keeps it and answers 502.
func (s *Source) refreshFailed(ctx context.Context, key string, cur *Token, err error) error {
	binding := string(s.Route.Server().Binding())
	if upstream.IsRefused(err) {
		if err := s.Records.Delete(ctx, key); err != nil {
			return storageError(err)
		}
		s.Metrics.Refresh(s.Route.Key(), metrics.RefreshRefused)
		s.Log.Info("the remote authorization server refused the refresh; the user must consent again",
			slog.String("event", "token_refresh_refused"), slog.String("user", cur.Subject),
			slog.String("binding", binding), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
		s.Audit.Try(ctx, cur.Subject, key, "token_refresh_refused", "denied", nil)
		return nil
	}
	s.Metrics.Refresh(s.Route.Key(), metrics.RefreshFailed)
	s.Log.Warn("token refresh failed", slog.String("event", "token_refresh_failed"), slog.String("user", cur.Subject),
		slog.String("binding", binding), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
	return apierror.Wrap(err, apierror.CodeASUnreachable, http.StatusBadGateway,
		"The remote authorization server %s could not be reached to refresh your token. The token is kept; try again shortly.", ASName(&cur.Grant))
}

// ClientCredentials gets a service account route's shared token with the
// client credentials grant (RFC 6749 §4.4) and stores it under key.
func (s *Source) ClientCredentials(ctx context.Context, g *upstream.Grant, key, actor string) *apierror.Error {
	tok, err := g.ClientCredentials(ctx, s.HTTP, s.Secret(ctx, g), s.Now())
	if err != nil {
		code := apierror.CodeASUnreachable
		msg := "The remote authorization server %s could not be reached for the route's shared token; try again shortly."
		if upstream.IsRefused(err) {
			code, msg = apierror.CodeUpstreamAuthorization, "The remote authorization server %s refused the route's client credentials."
		}
		return apierror.Wrap(err, code, http.StatusBadGateway, msg, ASName(g))
	}
	ut := &Token{Key: key, AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry,
		Grant: *g, Subject: actor, Acquired: s.Now(), Issued: s.Now(), Scopes: GrantedScopes(tok, g.Scopes)}
	if err := s.Records.Put(ctx, key, ut, time.Time{}); err != nil {
		return storageError(err)
	}
	s.Log.Info("upstream token acquired", slog.String("event", "token_acquired"), slog.String("user", actor),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("issuer", g.Issuer),
		slog.String("request_id", apierror.RequestID(ctx)))
	s.Audit.Try(ctx, actor, key, "token_acquired", "allowed", map[string]string{"grant": "client_credentials"})
	return nil
}

// GrantedScopes returns the scope of a token response, or the scopes asked
// for when the response names none (RFC 6749 §5.1).
func GrantedScopes(tok *oauth2.Token, asked []string) []string {
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		return strings.Fields(s)
	}
	return asked
}

// ASName names the authorization server of a grant in messages: its
// issuer, or the origin of its token endpoint for static endpoints.
func ASName(g *upstream.Grant) string {
	if g.Issuer != "" {
		return g.Issuer
	}
	if u, err := url.Parse(g.TokenURL); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return g.TokenURL
}

// UnionScopes merges scope lists, keeping the first occurrence's order.
func UnionScopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func storageError(err error) *apierror.Error {
	return apierror.Wrap(err, apierror.CodeStorageUnavailable, http.StatusServiceUnavailable,
		"The proxy's token store cannot be reached; nothing was changed. Try again shortly.")
}
