package login

import (
	"context"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// NSIDTokens holds the raw ID tokens of users who signed in on an
// enterprise route, by subject: what the proxy exchanges at the identity
// provider for an identity assertion (enterprise-managed authorization).
// File and Redis storage seal them as they seal remote tokens.
const NSIDTokens store.Namespace = "id_tokens"

// IDToken is a user's ID token as the identity provider issued it at
// sign-in.
type IDToken struct {
	// Raw is the compact JWT. It is a credential: never logged.
	Raw string
	// Issuer is the identity provider that issued it.
	Issuer string
	// Expiry is its exp; the record goes with it.
	Expiry time.Time
}

// idTokenLeeway is how long before its exp an ID token is no longer
// exchanged: the identity provider must still find it valid when the
// request arrives.
const idTokenLeeway = 30 * time.Second

// IDTokens keep the users' raw ID tokens until they expire.
type IDTokens struct {
	Records store.Records[IDToken]
	Now     func() time.Time
}

// Keep stores t as subject's ID token, replacing the one of an earlier
// sign-in.
func (k *IDTokens) Keep(ctx context.Context, subject string, t *IDToken) error {
	return k.Records.Put(ctx, subject, t, t.Expiry)
}

// Valid returns subject's kept ID token, or nil when there is none or it
// expires within idTokenLeeway: then only a new sign-in gives one.
func (k *IDTokens) Valid(ctx context.Context, subject string) (*IDToken, error) {
	t, err := k.Records.Get(ctx, subject)
	if err != nil || t == nil {
		return nil, err
	}
	if !k.Now().Add(idTokenLeeway).Before(t.Expiry) {
		return nil, nil
	}
	return t, nil
}
