package connect

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
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

// begin stores a pending authorization for req and returns the URL of the
// remote authorization server to send the browser to.
func (f *Flow) begin(ctx context.Context, g *upstream.Grant, req Request) (string, error) {
	p := &Pending{
		State:       store.NewSecret(32),
		Route:       f.Route.Key(),
		Subject:     req.Subject,
		Client:      req.Client,
		RequestID:   req.ID,
		BindingKey:  req.BindingKey,
		Upstream:    req.Upstream,
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

// lookup returns the live pending authorization of state without consuming
// it; nil when there is none.
func (f *Flow) lookup(ctx context.Context, state string) (*Pending, error) {
	p, err := f.Pending.Get(ctx, store.SecretKey(state))
	if err != nil || p == nil || !f.Now().Before(p.Expires) {
		return nil, err
	}
	return p, nil
}

// take consumes a pending authorization; false when another answer took it
// first.
func (f *Flow) take(ctx context.Context, p *Pending) bool {
	taken, err := f.Pending.Take(ctx, store.SecretKey(p.State))
	return err == nil && taken != nil
}

// redeem checks the remote authorization server's answer q for p (iss per
// RFC 9207, error) and exchanges its code for the upstream token. On failure
// the discovery of the remote endpoint is dropped, so the next attempt
// starts afresh.
func (f *Flow) redeem(ctx context.Context, p *Pending, q url.Values) (*upstream.Token, error) {
	fail := func(e *apierror.Error) error {
		f.Discovery.Invalidate(p.Upstream)
		f.Failed(ctx, p.Subject, e.Code, p.Grant.Issuer, e.Err)
		return e
	}
	iss := q.Get("iss")
	if p.Grant.Issuer != "" && (p.Grant.IssRequired || iss != "") && iss != p.Grant.Issuer {
		return nil, fail(apierror.New(apierror.CodeIssuerMismatch,
			"The answer names issuer %q, but the proxy sent the authorization to %s, so it did not use it (RFC 9207). Start again from your MCP client.", iss, p.Grant.Issuer))
	}
	if e := q.Get("error"); e != "" {
		return nil, fail(apierror.New(apierror.CodeUpstreamAuthorization,
			"The remote authorization server %s did not grant access: %s %s", p.Grant.Issuer, e, q.Get("error_description")).WithStatus(http.StatusForbidden))
	}
	k, e := f.Tokens.ProofKey(&p.Grant, nil)
	if e != nil {
		return nil, fail(e)
	}
	tok, err := f.exchange(ctx, p, q.Get("code"), k)
	if err != nil {
		if upstream.IsRefused(err) {
			return nil, fail(apierror.Wrap(err, apierror.CodeUpstreamAuthorization,
				"The remote authorization server %s refused to exchange the code: %v", p.Grant.Issuer, err))
		}
		return nil, fail(apierror.Wrap(err, apierror.CodeASUnreachable,
			"The remote authorization server %s could not be reached to exchange the code. Try again shortly.", p.Grant.Issuer))
	}
	t := &upstream.Token{
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
	}
	if e := tokens.Bind(t, k, &p.Grant); e != nil {
		return nil, fail(e)
	}
	return t, nil
}

// exchange exchanges the code of p's authorization for the upstream token,
// in a span of its own.
func (f *Flow) exchange(ctx context.Context, p *Pending, code string, k *dpop.Key) (*oauth2.Token, error) {
	ctx, span := tracing.Start(ctx, tracing.SpanCodeExchange, trace.SpanKindInternal)
	defer span.End()
	tok, err := p.Grant.Exchange(ctx, dpop.Client(f.HTTP, k, f.Tokens.Nonces(), f.Now), p.RedirectURL, code, p.Verifier, f.Credentials.Auth(ctx, &p.Grant))
	if span.IsRecording() {
		result := "success"
		switch {
		case upstream.IsRefused(err):
			result = "refused"
		case err != nil:
			result = "failed"
		}
		span.SetAttributes(tracing.ExchangeResult.String(result), tracing.ServerAddress.String(hostOf(p.Grant.TokenURL)))
	}
	return tok, err
}

// hostOf is the host of a URL, for a span: never its path or query.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Hostname()
	}
	return ""
}
