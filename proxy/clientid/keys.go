package clientid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The token endpoint authentication methods a Client ID Metadata Document
// may ask for.
const (
	// AuthNone is a public client: PKCE, and no client authentication.
	AuthNone = "none"
	// AuthPrivateKeyJWT is a client that signs an RFC 7523 client
	// assertion with a key its document publishes (jwks or jwks_uri).
	AuthPrivateKeyJWT = "private_key_jwt"
)

// SigningAlgs are the JWS algorithms the proxy accepts on client
// assertions: asymmetric ones only, never none or HS*, since a published
// document can hold no shared secret.
var SigningAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA}

// JWKSRefetch is how soon a client's jwks_uri is fetched again when an
// assertion names a key id the cached set lacks: at most once per this
// interval, so assertions with made-up key ids cannot make the proxy fetch
// on every request.
const JWKSRefetch = 30 * time.Second

type cachedKeys struct {
	set     *jose.JSONWebKeySet
	fetched time.Time
	expires time.Time
}

// parseKeySet reads a JWK Set that a client publishes: public signing keys
// only.
func parseKeySet(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, errors.New("is not a JWK Set: " + err.Error())
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("has no keys")
	}
	for i, k := range set.Keys {
		switch {
		case !k.IsPublic():
			return nil, fmt.Errorf("key %d is a private or symmetric key; publish public keys only", i)
		case !k.Valid():
			return nil, fmt.Errorf("key %d is not a valid key", i)
		case k.Use != "" && k.Use != "sig":
			return nil, fmt.Errorf("key %d has use %q, not sig", i, k.Use)
		}
	}
	return &set, nil
}

// checkJWKSURI reports why u cannot be a jwks_uri.
func checkJWKSURI(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return errors.New("jwks_uri is not a URL")
	case p.Scheme != "https" || p.Host == "":
		return errors.New("jwks_uri must be an https URL with a host")
	case p.User != nil || p.Fragment != "" || strings.Contains(u, "#"):
		return errors.New("jwks_uri must have neither user information nor a fragment")
	}
	return nil
}

// Keys returns the keys of client c that may have signed an assertion
// with key id kid (all of them when kid is empty): the document's jwks, or
// those at its jwks_uri, fetched under the same rules as the document and
// cached as long. A kid the keys lack is a key the client may have rotated
// in: the document is fetched again (for jwks) or the set (for jwks_uri),
// at most once per JWKSRefetch for each, so assertions with made-up key ids
// cannot make the proxy fetch on every request. A failed jwks_uri fetch is
// remembered for FailureCache, like a failed document.
func (r *Resolver) Keys(ctx context.Context, c *Client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKS == nil {
		return r.keysAt(ctx, c, kid)
	}
	keys := pick(c.JWKS, kid)
	if len(keys) > 0 || kid == "" {
		return keys, nil
	}
	fresh, err := r.refetch(ctx, c.ID)
	switch {
	case err != nil || fresh == nil || fresh == c:
		return keys, err
	case fresh.JWKS != nil:
		return pick(fresh.JWKS, kid), nil
	}
	return r.keysAt(ctx, fresh, kid) // the client moved its keys to a jwks_uri
}

// keysAt returns the keys at c's jwks_uri that may have signed with kid.
func (r *Resolver) keysAt(ctx context.Context, c *Client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKSURI == "" {
		return nil, &Error{c.ID, "its metadata document publishes no keys (jwks or jwks_uri)", nil}
	}
	now := r.now()
	r.mu.Lock()
	k, ok := r.keys[c.JWKSURI]
	failed, hasFailed := r.keyFailures[c.JWKSURI]
	r.mu.Unlock()
	if ok && now.Before(k.expires) {
		if keys := pick(k.set, kid); len(keys) > 0 || now.Sub(k.fetched) < JWKSRefetch {
			return keys, nil
		}
	}
	if hasFailed && now.Before(failed.until) {
		return nil, failed.err
	}
	set, ttl, err := r.fetchKeys(ctx, c)
	if err != nil {
		if ctx.Err() == nil {
			r.remember(&r.keyFailures, c.JWKSURI, err, now)
		}
		return nil, err
	}
	r.mu.Lock()
	if r.keys == nil || len(r.keys) > 10_000 {
		r.keys = make(map[string]cachedKeys)
	}
	r.keys[c.JWKSURI] = cachedKeys{set: set, fetched: now, expires: now.Add(max(ttl, minCache))}
	r.mu.Unlock()
	return pick(set, kid), nil
}

// refetch fetches the document of id again, for a key id its keys lack,
// unless such a refetch ran less than JWKSRefetch ago: then it returns the
// cached client, or nil.
func (r *Resolver) refetch(ctx context.Context, id string) (*Client, error) {
	now := r.now()
	r.mu.Lock()
	last, refetched := r.refetched[id]
	cached := r.cache[id]
	if !refetched || now.Sub(last) >= JWKSRefetch {
		if r.refetched == nil || len(r.refetched) > 10_000 {
			r.refetched = make(map[string]time.Time)
		}
		r.refetched[id] = now
		refetched = false
	}
	r.mu.Unlock()
	if refetched {
		return cached.c, nil
	}
	return r.load(ctx, id, now)
}

func pick(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

// fetchKeys fetches a client's jwks_uri through the resolver's HTTP client
// (the SSRF guard), with the document's size limit and fetch bounds.
func (r *Resolver) fetchKeys(ctx context.Context, c *Client) (*jose.JSONWebKeySet, time.Duration, error) {
	r.once.Do(func() { r.slots = make(chan struct{}, MaxFetches) })
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, &Error{c.ID, "its jwks_uri was not fetched: the proxy is fetching too many documents at once; try again shortly", ctx.Err()}
	}
	defer func() { <-r.slots }()
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.JWKSURI, nil)
	if err != nil {
		return nil, 0, &Error{c.ID, "its jwks_uri is not a URL", nil}
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, 0, &Error{c.ID, "its jwks_uri could not be fetched", errors.New(unwrapURLError(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, &Error{c.ID, fmt.Sprintf("fetching its jwks_uri answered %s, not 200", resp.Status), nil}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, 0, &Error{c.ID, fmt.Sprintf("its jwks_uri has content type %q, not application/json", mt), nil}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, 0, &Error{c.ID, "reading its jwks_uri failed", err}
	}
	if len(body) > MaxDocumentSize {
		return nil, 0, &Error{c.ID, fmt.Sprintf("its jwks_uri is larger than %d bytes", MaxDocumentSize), nil}
	}
	set, err := parseKeySet(body)
	if err != nil {
		return nil, 0, &Error{c.ID, "its jwks_uri " + err.Error(), nil}
	}
	return set, cacheTTL(resp.Header), nil
}
