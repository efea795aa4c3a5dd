package connect

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// FlowTTL bounds an authorization at the remote authorization server.
const FlowTTL = 10 * time.Minute

// Pending is an upstream authorization in flight, keyed by the hash of its
// state: it ties the remote authorization server's callback to the user and
// to the downstream request that is waiting for it.
type Pending struct {
	State       string
	Client      string // the MCP client waiting for this consent
	Route       string
	Subject     string
	RequestID   string // the downstream authorization request waiting for this consent
	BindingKey  string
	Upstream    string
	Verifier    string // PKCE
	Grant       upstream.Grant
	RedirectURL string
	Expires     time.Time
}

// Begin stores a pending authorization for the user and returns the URL of
// the remote authorization server to send the browser to.
func (f *Flow) Begin(ctx context.Context, g *upstream.Grant, subject, client, requestID, bindingKey, upstreamURL string) (string, error) {
	p := &Pending{
		State:       store.NewSecret(32),
		Route:       f.Route.Key(),
		Subject:     subject,
		Client:      client,
		RequestID:   requestID,
		BindingKey:  bindingKey,
		Upstream:    upstreamURL,
		Verifier:    store.NewSecret(48),
		Grant:       *g,
		RedirectURL: f.RedirectURL(),
		Expires:     f.Now().Add(FlowTTL),
	}
	if err := f.Pending.Put(ctx, store.SecretKey(p.State), p, p.Expires); err != nil {
		return "", err
	}
	return p.Grant.AuthCodeURL(p.RedirectURL, p.State, p.Verifier), nil
}

// Lookup returns the live pending authorization of state without consuming
// it; nil when there is none.
func (f *Flow) Lookup(ctx context.Context, state string) (*Pending, error) {
	p, err := f.Pending.Get(ctx, store.SecretKey(state))
	if err != nil || p == nil || !f.Now().Before(p.Expires) {
		return nil, err
	}
	return p, nil
}

// Take consumes a pending authorization; false when another answer took it
// first.
func (f *Flow) Take(ctx context.Context, p *Pending) bool {
	taken, err := f.Pending.Take(ctx, store.SecretKey(p.State))
	return err == nil && taken != nil
}

// Redeem checks the remote authorization server's answer q for p (iss per
// RFC 9207, error) and exchanges its code for the upstream token. On failure
// the discovery of the remote endpoint is dropped, so the next attempt
// starts afresh.
func (f *Flow) Redeem(ctx context.Context, p *Pending, q url.Values, secret string) (*tokens.Token, error) {
	fail := func(err error, code apierror.Code, status int, format string, args ...any) error {
		f.Discovery.Invalidate(p.Upstream)
		f.Failed(ctx, p.Subject, code, p.Grant.Issuer, err)
		return apierror.Wrap(err, code, status, format, args...)
	}
	iss := q.Get("iss")
	if p.Grant.Issuer != "" && (p.Grant.IssRequired || iss != "") && iss != p.Grant.Issuer {
		return nil, fail(nil, apierror.CodeIssuerMismatch, http.StatusBadRequest,
			"The answer names issuer %q, but the proxy sent the authorization to %s, so it did not use it (RFC 9207). Start again from your MCP client.", iss, p.Grant.Issuer)
	}
	if e := q.Get("error"); e != "" {
		return nil, fail(nil, apierror.CodeUpstreamAuthorization, http.StatusForbidden,
			"The remote authorization server %s did not grant access: %s %s", p.Grant.Issuer, e, q.Get("error_description"))
	}
	tok, err := p.Grant.Exchange(ctx, f.HTTP, p.RedirectURL, q.Get("code"), p.Verifier, secret)
	if err != nil {
		if upstream.IsRefused(err) {
			return nil, fail(err, apierror.CodeUpstreamAuthorization, http.StatusBadGateway,
				"The remote authorization server %s refused to exchange the code: %v", p.Grant.Issuer, err)
		}
		return nil, fail(err, apierror.CodeASUnreachable, http.StatusBadGateway,
			"The remote authorization server %s could not be reached to exchange the code. Try again shortly.", p.Grant.Issuer)
	}
	return &tokens.Token{
		Key:          p.BindingKey,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       tok.Expiry,
		Grant:        p.Grant,
		Subject:      p.Subject,
		Client:       p.Client,
		Acquired:     f.Now(),
		Issued:       f.Now(),
		Scopes:       tokens.GrantedScopes(tok, p.Grant.Scopes),
	}, nil
}
