package connect

import (
	"context"

	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// enterpriseGrant checks that the remote authorization server of an
// enterprise route can take an identity assertion: one whose metadata
// lists its grant types without the JWT bearer grant is refused before
// the identity provider is asked.
func (f *Flow) enterpriseGrant(ctx context.Context, d *upstream.Discovery, subject string) error {
	return f.requireJWTBearer(ctx, d, subject,
		"this route's enterprise-managed authorization needs. Ask its operator to accept identity assertions ("+upstream.GrantTypeJWTBearer+") from your identity provider, or remove enterprise from the route to have users consent there.")
}

// enterprise gets the signed-in user's token on an enterprise route: the
// ID token exchanged at the identity provider, the assertion presented at
// the remote authorization server, no consent screen. A failure is
// returned as it is, after one log line (without any token).
func (f *Flow) enterprise(ctx context.Context, g *upstream.Grant, req Request) error {
	t, err := f.Tokens.Enterprise(ctx, g, req.BindingKey, req.Subject)
	if err != nil {
		f.Failed(ctx, req.Subject, err.Code, g.Issuer, err.Err)
		return err
	}
	return f.Tokens.Acquired(ctx, t, "enterprise")
}
