package proxy

import (
	"context"
	"slices"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

func registrationKey(rt *route, issuer string) string { return rt.host + "\x00" + issuer }

// registration returns the route's dynamic registration at the
// discovered authorization server, registering once when there is none.
// Every user of the route shares it; concurrent first authorizations share
// one registration request.
func (p *Proxy) registration(ctx context.Context, rt *route, d *upstream.Discovery) (*store.Registration, error) {
	key := registrationKey(rt, d.Issuer)
	if reg, err := getRecord[store.Registration](ctx, p.st, nsRegistrations, key); err != nil || reg != nil {
		return reg, err
	}
	v, err, _ := p.registering.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if reg, err := getRecord[store.Registration](ctx, p.st, nsRegistrations, key); err != nil || reg != nil {
			return reg, err
		}
		resp, err := upstream.Register(ctx, p.hc, d.AS.RegistrationEndpoint, "mcp-proxy for "+rt.host, rt.origin, rt.upstreamCallback)
		if err != nil {
			return nil, err
		}
		reg := &store.Registration{ClientID: resp.ClientID, Secret: resp.ClientSecret}
		if reg.Secret != "" && (resp.TokenEndpointAuthMethod == "client_secret_post" ||
			resp.TokenEndpointAuthMethod == "" && !slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic")) {
			reg.SecretInBody = true
		}
		if err := p.st.put(ctx, nsRegistrations, key, reg, time.Time{}); err != nil {
			return nil, err
		}
		rt.log.Info("registered with the remote authorization server", "event", "client_registered",
			"issuer", d.Issuer, "method", "dcr")
		return reg, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.Registration), nil
}
