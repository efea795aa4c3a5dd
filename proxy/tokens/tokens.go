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
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// NSUpstream holds upstream tokens, by binding key.
const NSUpstream store.Namespace = "upstream"

// Source is one route's source of upstream tokens.
type Source struct {
	Route   *config.Route
	Records store.Records[upstream.Token]
	// Locks holds the refresh leases (the store's backend).
	Locks   store.Backend
	HTTP    *http.Client
	Now     func() time.Time
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Audit   *audit.Recorder
	// Credentials hold the secrets of the route's clients at remote
	// authorization servers, for refresh, client credentials and
	// revocation.
	Credentials *credentials.Store
	// IDTokens keep the users' ID tokens, and IdP is the identity
	// provider: an enterprise route's exchange.
	IDTokens *login.IDTokens
	IdP      *login.Provider
	// Jitter returns a number in [0, 1) that shortens each backoff wait;
	// nil: math/rand/v2's Float64.
	Jitter func() float64

	refreshes   singleflight.Group
	streaks     streaks
	refusedJWTs refusedAssertions // workload tokens refused, never sent again
	nonces      dpop.Nonces       // the remote servers' DPoP nonces
	behind      sync.WaitGroup    // background refreshes, for tests to wait on
}

// Get reads the token under key; nil when there is none.
func (s *Source) Get(ctx context.Context, key string) (*upstream.Token, error) {
	return s.Records.Get(ctx, key)
}

// Put stores a token under its key.
func (s *Source) Put(ctx context.Context, t *upstream.Token) error {
	return s.Records.Put(ctx, t.Key, t, time.Time{})
}

// Drop deletes the token under key.
func (s *Source) Drop(ctx context.Context, key string) error { return s.Records.Delete(ctx, key) }

// List returns the tokens whose keys start with prefix, sorted by key.
func (s *Source) List(ctx context.Context, prefix string) ([]*upstream.Token, error) {
	toks, err := s.Records.Scan(ctx, prefix)
	slices.SortFunc(toks, func(a, b *upstream.Token) int { return strings.Compare(a.Key, b.Key) })
	return toks, err
}

// Acquired stores a token the proxy just obtained (a code exchange, a
// client credentials grant) and writes its token_acquired line and audit
// record: the one place they are written. grant names the grant in the
// audit record ("" for the authorization code). A step-up in progress for
// the key keeps counting until an answer succeeds.
func (s *Source) Acquired(ctx context.Context, t *upstream.Token, grant string) error {
	if prev, _ := s.Records.Get(ctx, t.Key); prev != nil {
		t.StepUps = prev.StepUps
	}
	if err := s.Records.Put(ctx, t.Key, t, time.Time{}); err != nil {
		return storageError(err)
	}
	s.Log.Info("upstream token acquired", event.TokenAcquired.Attr(), slog.String("user", t.Subject),
		slog.String("binding", string(s.Route.Server().Binding())), slog.String("issuer", t.Grant.Issuer),
		slog.String("request_id", apierror.RequestID(ctx)))
	var detail map[string]string
	if grant != "" {
		detail = map[string]string{"grant": grant}
	} else {
		grant = "authorization_code"
	}
	s.Metrics.TokenAcquired(s.Route.Key(), grant, t.Bound())
	s.Audit.Try(ctx, t.Subject, t.Key, "token_acquired", "allowed", detail)
	return nil
}

// ClientCredentials runs the client credentials grant (RFC 6749 §4.4) of
// g, for a service account route's shared token acting for actor.
func (s *Source) ClientCredentials(ctx context.Context, g *upstream.Grant, key, actor string) (*upstream.Token, *apierror.Error) {
	k, e := s.ProofKey(g, nil)
	if e != nil {
		return nil, e
	}
	tok, err := g.ClientCredentials(ctx, s.sender(k), s.Credentials.Auth(ctx, g), s.Now())
	if err != nil {
		if upstream.IsRefused(err) {
			return nil, apierror.Wrap(err, apierror.CodeUpstreamAuthorization, "The remote authorization server %s refused the route's client credentials.", ASName(g))
		}
		return nil, apierror.Wrap(err, apierror.CodeASUnreachable, "The remote authorization server %s could not be reached for the route's shared token; try again shortly.", ASName(g))
	}
	return s.obtained(tok, g, key, actor, k)
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
	return apierror.Wrap(err, apierror.CodeStorageUnavailable,
		"The proxy's token store cannot be reached; nothing was changed. Try again shortly.")
}
