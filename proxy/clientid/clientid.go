// Package clientid resolves the client ids of MCP clients that connect to
// the proxy. A client id that is an https URL names a Client ID Metadata
// Document (draft-ietf-oauth-client-id-metadata-document): the proxy
// fetches it, SSRF-safely, and checks it before it trusts a single field.
package clientid

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxDocumentSize is the largest document the proxy reads (the draft's
// suggested bound of 5 KB).
const MaxDocumentSize = 5 * 1024

// Cache bounds: documents are cached as their Cache-Control allows, but at
// least minCache (so a flood of authorizations does not mean a flood of
// fetches) and at most maxCache (so a changed document is seen within a day).
const (
	minCache = time.Minute
	maxCache = 24 * time.Hour
)

// Client is a resolved MCP client.
type Client struct {
	ID           string
	Name         string
	URI          string
	RedirectURIs []string
	// Native is a document with application_type native (RFC 7591 §2,
	// OpenID Connect Registration): it may also use private-use schemes.
	Native bool
	// AuthMethod is AuthNone or AuthPrivateKeyJWT.
	AuthMethod string
	// JWKS or JWKSURI (exactly one, for AuthPrivateKeyJWT) holds the keys
	// the client signs its assertions with.
	JWKS    *jose.JSONWebKeySet
	JWKSURI string
}

// Host returns the host of the client id URL, which the consent page shows
// so the user can tell who is asking.
func (c *Client) Host() string {
	u, err := url.Parse(c.ID)
	if err != nil {
		return c.ID
	}
	return u.Host
}

// Error is a client id that cannot be used, with the reason. Its text names
// the client id without user information, and never the network error
// behind a failed fetch (that would tell a stranger which ports of a
// trusted host answer); Cause keeps it for the log.
type Error struct {
	ClientID string
	Reason   string
	// Cause is the network error of a failed fetch, for the log only.
	Cause error
}

func (e *Error) Error() string { return fmt.Sprintf("client %s: %s", Redact(e.ClientID), e.Reason) }

// Redact returns a client id fit for a page or a log: any user
// information (https://user:password@host/...) is replaced by "***".
func Redact(id string) string {
	u, err := url.Parse(id)
	if err != nil || u.User == nil {
		return id
	}
	u.User = nil
	return strings.Replace(u.String(), "://", "://***@", 1)
}

// Bounds on fetching documents, so that strangers' authorization requests
// cannot make the proxy hold many slow fetches open or repeat a failing
// one.
const (
	// FetchTimeout bounds one document fetch.
	FetchTimeout = 10 * time.Second
	// MaxFetches is how many documents are fetched at once; more wait for
	// a place until their request's context ends.
	MaxFetches = 16
	// FailureCache is how long a failed fetch is remembered: the same
	// client id fails at once without a new fetch.
	FailureCache = 30 * time.Second
)

// Resolver fetches and caches client metadata documents.
type Resolver struct {
	// HTTP fetches documents. It must apply the SSRF guard and must not
	// follow redirects.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	cache    map[string]cachedClient
	failures map[string]failedFetch
	keys     map[string]cachedKeys
	// keyFailures remembers failed jwks_uri fetches, by URI.
	keyFailures map[string]failedFetch
	// refetched is when each document was last fetched again for a key id
	// its jwks lacked.
	refetched map[string]time.Time
	slots     chan struct{}
	once      sync.Once
}

type failedFetch struct {
	err   error
	until time.Time
}

type cachedClient struct {
	c       *Client
	fetched time.Time
	expires time.Time
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// CheckURL reports why id cannot be a client id URL, or nil (draft §3).
func CheckURL(id string) error {
	u, err := url.Parse(id)
	switch {
	case err != nil:
		return &Error{id, "is not a URL", nil}
	case u.Scheme != "https":
		return &Error{id, "a client id URL must use https", nil}
	case u.Host == "":
		return &Error{id, "a client id URL needs a host", nil}
	case u.User != nil:
		return &Error{id, "a client id URL must not carry user information", nil}
	case u.Fragment != "" || strings.Contains(id, "#"):
		return &Error{id, "a client id URL must not have a fragment", nil}
	case u.Path == "" || u.Path == "/":
		return &Error{id, "a client id URL needs a path", nil}
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return &Error{id, "a client id URL must not have dot segments", nil}
		}
	}
	return nil
}

// Resolve returns the client named by id, fetching its metadata document
// unless a fresh copy is cached. A failed fetch is remembered for
// FailureCache.
func (r *Resolver) Resolve(ctx context.Context, id string) (*Client, error) {
	if err := CheckURL(id); err != nil {
		return nil, err
	}
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[id]; ok && now.Before(c.expires) {
		r.mu.Unlock()
		return c.c, nil
	}
	if f, ok := r.failures[id]; ok && now.Before(f.until) {
		r.mu.Unlock()
		return nil, f.err
	}
	r.mu.Unlock()

	return r.load(ctx, id, now)
}

// load fetches id's document, then caches it (for as long as its
// Cache-Control says) or the failure (for FailureCache).
func (r *Resolver) load(ctx context.Context, id string, now time.Time) (*Client, error) {
	r.once.Do(func() { r.slots = make(chan struct{}, MaxFetches) })
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{id, "its metadata document was not fetched: the proxy is fetching too many documents at once; try again shortly", ctx.Err()}
	}
	fctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	c, ttl, err := r.fetch(fctx, id)
	cancel()
	<-r.slots
	if err != nil {
		if ctx.Err() == nil { // a failure of the document, not of this request
			r.remember(&r.failures, id, err, now)
		}
		return nil, err
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = make(map[string]cachedClient)
	}
	if ttl > 0 {
		r.cache[id] = cachedClient{c: c, fetched: now, expires: now.Add(ttl)}
	} else {
		// Not cached, but the fetch is remembered: a key refetch waits
		// JWKSRefetch after it all the same.
		r.cache[id] = cachedClient{c: c, fetched: now, expires: now}
	}
	r.mu.Unlock()
	return c, nil
}

// remember keeps a failed fetch of key in *m for FailureCache.
func (r *Resolver) remember(m *map[string]failedFetch, key string, err error, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *m == nil || len(*m) > 10_000 {
		*m = make(map[string]failedFetch)
	}
	(*m)[key] = failedFetch{err: err, until: now.Add(FailureCache)}
}
