package proxy

import (
	"context"
	"slices"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// registration is a client the proxy registered dynamically (RFC 7591) for
// one route at one authorization server. Every user of the route shares
// it.
type registration struct {
	clientID     string
	secret       string
	secretInBody bool
}

func registrationKey(rt *route, issuer string) string { return rt.host + "\x00" + issuer }

// registration returns the route's dynamic registration at the
// discovered authorization server, registering once when there is none.
// Concurrent first authorizations share one registration request.
func (p *Proxy) registration(ctx context.Context, rt *route, d *upstream.Discovery) (*registration, error) {
	key := registrationKey(rt, d.Issuer)
	if reg, ok := p.registrations.Get(key, time.Time{}); ok {
		return reg, nil
	}
	v, err, _ := p.registering.Do(key, func() (any, error) {
		if reg, ok := p.registrations.Get(key, time.Time{}); ok {
			return reg, nil
		}
		resp, err := upstream.Register(context.WithoutCancel(ctx), p.hc, d.AS.RegistrationEndpoint,
			"mcp-proxy for "+rt.host, rt.origin, rt.upstreamCallback)
		if err != nil {
			return nil, err
		}
		reg := &registration{clientID: resp.ClientID, secret: resp.ClientSecret}
		if reg.secret != "" && resp.TokenEndpointAuthMethod == "client_secret_post" {
			reg.secretInBody = true
		}
		if reg.secret != "" && resp.TokenEndpointAuthMethod == "" &&
			!slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic") {
			reg.secretInBody = true
		}
		p.registrations.Put(key, reg, time.Time{})
		rt.log.Info("registered with the remote authorization server", "event", "client_registered",
			"issuer", d.Issuer, "method", "dcr")
		return reg, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*registration), nil
}
