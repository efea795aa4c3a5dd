// Package login signs users in at the operator's OpenID Connect identity
// provider (authorization code flow with PKCE and a nonce), with
// coreos/go-oidc verifying the ID token.
package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// Provider is one identity provider.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// GroupsClaim names the claim with the user's groups (default
	// groups).
	GroupsClaim string
	// HTTP reaches the provider (a host named in configuration).
	HTTP *http.Client
	// Now is the clock for ID token checks; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	p  *oidc.Provider
}

// discover reads the provider's discovery document once; a failure is
// retried on the next sign-in, so a provider that is briefly down at start
// does not stop the proxy.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p != nil {
		return p.p, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.HTTP), p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("identity provider %s: %w", p.Issuer, err)
	}
	p.p = op
	return op, nil
}

func (p *Provider) config(op *oidc.Provider, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     op.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       p.Scopes,
	}
}

// AuthURL returns where to send the browser to sign in.
func (p *Provider) AuthURL(ctx context.Context, redirectURL, state, nonce, verifier string) (string, error) {
	op, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return p.config(op, redirectURL).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Finish redeems the code and verifies the ID token (signature, issuer,
// audience, expiry and nonce), and returns the user with the token's
// claims, and the ID token itself (for an enterprise route's exchange;
// the caller decides whether to keep it). When the ID token lacks the groups claim and the provider has a
// userinfo endpoint, the groups come from there (Okta and some Keycloak
// setups put them only there).
func (p *Provider) Finish(ctx context.Context, redirectURL, code, verifier, nonce string) (*request.Identity, *IDToken, error) {
	id, raw, exp, err := p.finish(ctx, redirectURL, code, verifier, nonce)
	if err != nil {
		return nil, nil, err
	}
	return id, &IDToken{Raw: raw, Issuer: p.Issuer, Expiry: exp}, nil
}

func (p *Provider) finish(ctx context.Context, redirectURL, code, verifier, nonce string) (*request.Identity, string, time.Time, error) {
	fail := func(err error) (*request.Identity, string, time.Time, error) { return nil, "", time.Time{}, err }
	op, err := p.discover(ctx)
	if err != nil {
		return fail(err)
	}
	tok, err := p.config(op, redirectURL).Exchange(oidc.ClientContext(ctx, p.HTTP), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fail(fmt.Errorf("redeeming the sign-in code: %w", err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return fail(errors.New("the identity provider returned no id_token"))
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: p.now}).Verify(ctx, raw)
	if err != nil {
		return fail(fmt.Errorf("verifying the ID token: %w", err))
	}
	if idt.Nonce != nonce {
		return fail(errors.New("the ID token's nonce does not match this sign-in"))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return fail(fmt.Errorf("reading ID token claims: %w", err))
	}
	if _, has := claims[p.groupsClaim()]; !has && op.UserInfoEndpoint() != "" {
		if g, ok := p.userinfoGroups(ctx, op, tok); ok {
			claims[p.groupsClaim()] = g
		}
	}
	claims["sub"] = idt.Subject
	return p.Identity(claims), raw, idt.Expiry, nil
}

// userinfoGroups asks the userinfo endpoint for the groups claim.
func (p *Provider) userinfoGroups(ctx context.Context, op *oidc.Provider, tok *oauth2.Token) (any, bool) {
	ui, err := op.UserInfo(oidc.ClientContext(ctx, p.HTTP), oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, false
	}
	var c map[string]any
	if ui.Claims(&c) != nil {
		return nil, false
	}
	g, ok := c[p.groupsClaim()]
	return g, ok
}

func (p *Provider) groupsClaim() string {
	if p.GroupsClaim == "" {
		return "groups"
	}
	return p.GroupsClaim
}

func (p *Provider) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// TokenEndpoint is the identity provider's token endpoint, from its
// discovery document: where an enterprise route exchanges ID tokens by
// default.
func (p *Provider) TokenEndpoint(ctx context.Context) (string, error) {
	op, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return op.Endpoint().TokenURL, nil
}
