package tokens

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// enterprise reports whether the route gets each user's token by
// enterprise-managed authorization.
func (s *Source) enterprise() bool { return s.Route.Server().Enterprise != nil }

// idpClient is the proxy's client at the identity provider for the
// exchange: the route's enterprise settings, each defaulting to
// identity_provider's (its discovered token endpoint, its client).
func (s *Source) idpClient(ctx context.Context) (*upstream.IdPClient, error) {
	e := s.Route.Server().Enterprise
	c := &upstream.IdPClient{TokenURL: e.TokenEndpoint, ClientID: e.ClientID, Secret: e.ClientSecret}
	if c.ClientID == "" && s.IdP != nil {
		c.ClientID, c.Secret = s.IdP.ClientID, s.IdP.ClientSecret
	}
	if c.TokenURL == "" {
		if s.IdP == nil {
			return nil, errors.New("no identity provider to ask for its token endpoint")
		}
		u, err := s.IdP.TokenEndpoint(ctx)
		if err != nil {
			return nil, err
		}
		c.TokenURL = u
	}
	return c, nil
}

// idpName names the identity provider of an exchange in messages.
func (s *Source) idpName() string {
	if s.IdP != nil && s.IdP.Issuer != "" {
		return s.IdP.Issuer
	}
	return s.Route.Server().Enterprise.TokenEndpoint
}

// Enterprise gets subject's remote token without a consent screen
// (enterprise-managed authorization, SEP-990): the ID token kept from
// their sign-in is exchanged at the identity provider for an ID-JAG
// naming the remote authorization server (RFC 8693), which is presented
// there with the JWT bearer grant (RFC 7523) and the route's client
// authentication. A refusal by either names who refused and what to do;
// when the identity provider refuses, nothing is sent to the remote
// authorization server. The error's code tells a refusal
// (upstream_authorization_failed) from a server that could not be reached
// (authorization_server_unreachable).
func (s *Source) Enterprise(ctx context.Context, g *upstream.Grant, key, subject string) (*upstream.Token, *apierror.Error) {
	idt, err := s.IDTokens.Valid(ctx, subject)
	if err != nil {
		return nil, storageError(err)
	}
	if idt == nil {
		return nil, apierror.New(apierror.CodeUpstreamAuthorization,
			"Your sign-in at %s is too old for the identity provider to vouch for you at %s (its ID token has expired). Connect your MCP client again: the proxy asks you to sign in.",
			s.idpName(), ASName(g))
	}
	idp, err := s.idpClient(ctx)
	if err != nil {
		return nil, apierror.Wrap(err, apierror.CodeASUnreachable, "The identity provider %s could not be reached to vouch for you at %s; try again shortly.", s.idpName(), ASName(g))
	}
	jag, err := idp.ExchangeIDJAG(ctx, s.HTTP, idt.Raw, g.Issuer, g.Resource)
	if err != nil {
		if upstream.IsRefused(err) {
			return nil, apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
				"Your identity provider %s refused to vouch for you at %s (%s). With enterprise-managed authorization your organisation decides who may use this server: ask your identity provider's administrator for access to it. Nothing was sent to %s.",
				s.idpName(), ASName(g), refusal(err), ASName(g))
		}
		return nil, apierror.Wrap(err, apierror.CodeASUnreachable, "The identity provider %s could not be reached to vouch for you at %s; try again shortly.", s.idpName(), ASName(g))
	}
	k, e := s.ProofKey(g, nil)
	if e != nil {
		return nil, e
	}
	tok, err := g.JWTBearer(ctx, s.sender(k), jag, s.Credentials.Auth(ctx, g), s.Now())
	if err != nil {
		if upstream.IsRefused(err) {
			return nil, apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
				"The remote authorization server %s refused the identity assertion from %s (%s). Check that it trusts %s as your enterprise identity provider and that upstream_oauth2.client_id is the client registered there for enterprise access.",
				ASName(g), s.idpName(), refusal(err), s.idpName())
		}
		return nil, apierror.Wrap(err, apierror.CodeASUnreachable, "The remote authorization server %s could not be reached for your token; try again shortly.", ASName(g))
	}
	return s.obtained(tok, g, key, subject, k)
}

// reexchange renews an enterprise route's token under key with a new
// exchange. A refusal (or an ID token that has expired) drops the token:
// the user's next connection signs in again and exchanges anew. A server
// that cannot be reached keeps it, as for any refresh.
func (s *Source) reexchange(ctx context.Context, key string, cur *upstream.Token) (*upstream.Token, error) {
	next, e := s.Enterprise(ctx, &cur.Grant, key, cur.Subject)
	if e != nil {
		if e.Code == apierror.CodeASUnreachable {
			return nil, s.failed(ctx, key, cur, e.Err, e)
		}
		s.streaks.drop(key)
		return nil, s.refused(ctx, key, cur, fmt.Errorf("%s", e.Message))
	}
	next.Acquired, next.Client, next.StepUps = cur.Acquired, cur.Client, cur.StepUps
	return s.renewed(ctx, key, cur, next)
}
