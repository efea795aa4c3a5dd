// Package tokens is the proxy's source of upstream tokens, in the habit of
// x/oauth2's TokenSource: the request path asks for the token of a binding
// key and never knows how it was made. The source serves cached tokens,
// refreshes them in the background ahead of expiry (one refresh at a time
// per key, across replicas through a lease in the store, with backoff after
// failures), gets service accounts' tokens with the client credentials
// grant, and keeps the step-up state the remote server asked for.
package tokens

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
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
	// Jitter returns a number in [0, 1) that shortens each backoff wait;
	// nil: math/rand/v2's Float64.
	Jitter func() float64

	refreshes singleflight.Group
	streaks   streaks
	behind    sync.WaitGroup // background refreshes, for tests to wait on
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
