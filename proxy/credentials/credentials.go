// Package credentials holds a route's own client credentials at remote
// authorization servers: the secret or private key of a pre-registered
// client, from the configuration, and the client a dynamic registration (RFC 7591) returned,
// from the store. connect registers and authorizes with them; tokens
// refreshes and revokes with them. A Client ID Metadata Document client
// has no secret.
package credentials

import (
	"context"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// NSRegistrations holds the route's dynamic registrations, by route and
// issuer.
const NSRegistrations store.Namespace = "registrations"

// Registration is a client the proxy registered dynamically (RFC 7591) for
// one route at one authorization server; every user of the route shares it.
type Registration struct {
	ClientID     string
	Secret       string
	SecretInBody bool
}

// Store is one route's credentials.
type Store struct {
	Route   *config.Route
	Records store.Records[Registration]
}

func (s *Store) key(issuer string) string { return s.Route.Key() + "\x00" + issuer }

// Registration returns the route's dynamic registration at issuer; nil
// when there is none.
func (s *Store) Registration(ctx context.Context, issuer string) (*Registration, error) {
	return s.Records.Get(ctx, s.key(issuer))
}

// SaveRegistration keeps the route's dynamic registration at issuer.
func (s *Store) SaveRegistration(ctx context.Context, issuer string, reg *Registration) error {
	return s.Records.Put(ctx, s.key(issuer), reg, time.Time{})
}

// Auth returns how the client a grant uses authenticates: a registered
// client as the configuration says (its secret or its private key), a
// dynamically registered one with the secret its registration returned, a
// Client ID Metadata Document client not at all. A store failure reads as
// no secret: the authorization server then refuses the request, which the
// caller reports.
func (s *Store) Auth(ctx context.Context, g *upstream.Grant) upstream.ClientAuth {
	switch g.Method {
	case upstream.MethodPreregistered, upstream.MethodStatic:
		if pre := s.Route.Server().UpstreamOAuth2; pre != nil && pre.ClientID == g.ClientID {
			return upstream.ClientAuth{Secret: pre.ClientSecret, Key: pre.PrivateKey(), KeyID: pre.PrivateKeyID}
		}
	case upstream.MethodDCR:
		reg, err := s.Registration(context.WithoutCancel(ctx), g.Issuer)
		if err == nil && reg != nil && reg.ClientID == g.ClientID {
			return upstream.ClientAuth{Secret: reg.Secret}
		}
	}
	return upstream.ClientAuth{}
}
