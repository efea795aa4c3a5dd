package connect

import (
	"context"
	"slices"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// workloadGrant fills in the client identity of a workload identity
// route's grant: the workload's JWT is the credential, so the proxy
// registers nowhere and sends upstream_oauth2.client_id, when set, as a
// public client's id. An authorization server whose metadata lists its
// grant types without the JWT bearer grant is refused before any token
// request, and no other grant is tried in its place.
func (f *Flow) workloadGrant(ctx context.Context, d *upstream.Discovery, g *upstream.Grant, subject string) error {
	g.Method = upstream.MethodWorkload
	if pre := f.Route.Server().UpstreamOAuth2; pre.Registered() {
		g.ClientID = pre.ClientID
	}
	return f.requireJWTBearer(ctx, d, subject,
		"this route's workload_identity needs. Ask its operator to accept "+upstream.GrantTypeJWTBearer+" for your workload's tokens; the proxy tries no other grant.")
}

// requireJWTBearer refuses a remote authorization server whose metadata
// lists its grant types without the JWT bearer grant, before any request;
// needs completes the refusal: what the route needs it for, and what to
// do.
func (f *Flow) requireJWTBearer(ctx context.Context, d *upstream.Discovery, subject, needs string) error {
	gt := d.AS.GrantTypesSupported
	if len(gt) == 0 || slices.Contains(gt, upstream.GrantTypeJWTBearer) {
		return nil
	}
	f.Discovery.Invalidate(d.URL)
	e := apierror.New(apierror.CodeUpstreamAuthorization,
		"The remote authorization server %s does not offer the JWT bearer grant (its grant_types_supported are %v), which %s",
		d.Issuer, gt, needs)
	f.Failed(ctx, subject, e.Code, d.Issuer, nil)
	return e
}

// jwtBearer gets a workload identity route's shared token with the JWT
// bearer grant (RFC 7523), acting for the signed-in user. A failure is
// returned as it is: the caller answers it, and nothing else is tried.
func (f *Flow) jwtBearer(ctx context.Context, g *upstream.Grant, req Request) error {
	t, err := f.Tokens.JWTBearer(ctx, g, req.BindingKey, req.Subject)
	if err != nil {
		f.Failed(ctx, req.Subject, err.Code, g.Issuer, err.Err)
		return err
	}
	return f.Tokens.Acquired(ctx, t, "jwt_bearer")
}
