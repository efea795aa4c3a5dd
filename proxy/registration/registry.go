package registration

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// NS is the namespace of registered clients in the proxy's store, which
// replicas share.
const NS store.Namespace = "registered_clients"

// IDPrefix starts every client id the proxy issues. Ids are random and
// opaque, never https URLs, so they cannot collide with Client ID Metadata
// Document ids.
const IDPrefix = "mcpp_client_"

// Bounds on the registrations the proxy keeps.
const (
	// UnusedTTL is how long a registration lives that no token was ever
	// issued to; one that got tokens lives as long as its grants
	// (UsedTTL from its last token).
	UnusedTTL = 24 * time.Hour
	// MaxLive is how many registrations the store holds at once; a
	// registration past it is refused until unused ones expire.
	MaxLive = 10_000
)

// Client is a registered client, as stored.
type Client struct {
	ID              string
	Route           string // the route's key: a registration is valid on its host only
	Name            string
	URI             string
	RedirectURIs    []string
	ApplicationType string
	Created         time.Time
	// Used is when a token was last issued to the client; zero: never.
	Used time.Time
}

// ErrFull is the refusal of a registration when MaxLive are stored.
var ErrFull = errors.New("the proxy holds the most registrations it keeps")

// Registry stores the registered clients of the proxy's routes.
type Registry struct {
	B   store.Backend
	Now func() time.Time
	// Max bounds the live registrations; zero means MaxLive.
	Max int
	// UsedTTL is how long a used registration lives after its last token:
	// as long as a refresh token.
	UsedTTL time.Duration
}

func (g *Registry) records() store.Records[Client] { return store.Records[Client]{B: g.B, NS: NS} }

// IsRegisteredID reports whether id is of the form the proxy issues.
func IsRegisteredID(id string) bool { return strings.HasPrefix(id, IDPrefix) }

// Register stores a new client for the route and returns it. The count
// check is not atomic across replicas: concurrent registrations may pass
// Max by a few, which the rate limits bound.
func (g *Registry) Register(ctx context.Context, route string, r *Request) (*Client, error) {
	max := g.Max
	if max == 0 {
		max = MaxLive
	}
	n := 0
	errStop := errors.New("stop")
	err := g.B.Scan(ctx, string(NS), "", func(string, []byte) error {
		if n++; n >= max {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil, ErrFull
	}
	if err != nil {
		return nil, err
	}
	now := g.Now()
	c := &Client{
		ID: IDPrefix + store.NewSecret(18), Route: route, Name: r.Name, URI: r.URI,
		RedirectURIs: r.RedirectURIs, ApplicationType: r.ApplicationType, Created: now,
	}
	if err := g.records().Put(ctx, c.ID, c, now.Add(UnusedTTL)); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the registered client with id on the route, or nil when
// there is none (never registered, expired, or registered on another host).
func (g *Registry) Get(ctx context.Context, route, id string) (*Client, error) {
	if !IsRegisteredID(id) {
		return nil, nil
	}
	c, err := g.records().Get(ctx, id)
	if err != nil || c == nil || c.Route != route {
		return nil, err
	}
	return c, nil
}

// Used records that a token was issued to the client: it now lives
// UsedTTL from now. At most one store write an hour per client.
func (g *Registry) Used(ctx context.Context, route, id string) error {
	c, err := g.Get(ctx, route, id)
	if err != nil || c == nil {
		return err
	}
	now := g.Now()
	if !c.Used.IsZero() && now.Sub(c.Used) < time.Hour {
		return nil
	}
	c.Used = now
	return g.records().Put(ctx, c.ID, c, now.Add(g.UsedTTL))
}
