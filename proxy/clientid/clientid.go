// Package clientid resolves the client ids of MCP clients that connect to
// the proxy. A client id that is an https URL names a Client ID Metadata
// Document (draft-ietf-oauth-client-id-metadata-document): the proxy
// fetches it, SSRF-safely, and checks it before it trusts a single field.
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
	"slices"
	"strconv"
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
	slots    chan struct{}
	once     sync.Once
}

type failedFetch struct {
	err   error
	until time.Time
}

type cachedClient struct {
	c       *Client
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
			r.mu.Lock()
			if r.failures == nil || len(r.failures) > 10_000 {
				r.failures = make(map[string]failedFetch)
			}
			r.failures[id] = failedFetch{err: err, until: now.Add(FailureCache)}
			r.mu.Unlock()
		}
		return nil, err
	}
	if ttl > 0 {
		r.mu.Lock()
		if r.cache == nil {
			r.cache = make(map[string]cachedClient)
		}
		r.cache[id] = cachedClient{c: c, expires: now.Add(ttl)}
		r.mu.Unlock()
	}
	return c, nil
}

func (r *Resolver) fetch(ctx context.Context, id string) (*Client, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, 0, &Error{id, err.Error(), nil}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, 0, &Error{id, "its metadata document could not be fetched", errors.New(unwrapURLError(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		reason := fmt.Sprintf("fetching its metadata document answered %s, not 200", resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			reason += " (a redirect to " + loc + "; client id URLs are not followed)"
		}
		return nil, 0, &Error{id, reason, nil}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, 0, &Error{id, fmt.Sprintf("its metadata document has content type %q, not application/json", mt), nil}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, 0, &Error{id, "reading its metadata document: " + err.Error(), nil}
	}
	if len(body) > MaxDocumentSize {
		return nil, 0, &Error{id, fmt.Sprintf("its metadata document is larger than %d bytes", MaxDocumentSize), nil}
	}
	var doc struct {
		ClientID                string          `json:"client_id"`
		ClientName              string          `json:"client_name"`
		ClientURI               string          `json:"client_uri"`
		RedirectURIs            []string        `json:"redirect_uris"`
		TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
		ApplicationType         string          `json:"application_type"`
		JWKS                    json.RawMessage `json:"jwks"`
		JWKSURI                 string          `json:"jwks_uri"`
		ClientSecret            *string         `json:"client_secret"`
		ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, &Error{id, "its metadata document is not a JSON object: " + err.Error(), nil}
	}
	switch {
	case doc.ClientID != id:
		return nil, 0, &Error{id, fmt.Sprintf("its metadata document names client_id %q, which differs from its URL", doc.ClientID), nil}
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return nil, 0, &Error{id, "its metadata document carries a client secret, which a published document must not", nil}
	case slices.Contains([]string{"client_secret_basic", "client_secret_post", "client_secret_jwt"}, doc.TokenEndpointAuthMethod):
		return nil, 0, &Error{id, fmt.Sprintf("its metadata document asks for token_endpoint_auth_method %q, a shared secret", doc.TokenEndpointAuthMethod), nil}
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != AuthNone && doc.TokenEndpointAuthMethod != AuthPrivateKeyJWT:
		return nil, 0, &Error{id, fmt.Sprintf("token_endpoint_auth_method %q is not supported; the proxy accepts public clients (none) with PKCE and private_key_jwt", doc.TokenEndpointAuthMethod), nil}
	case len(doc.RedirectURIs) == 0:
		return nil, 0, &Error{id, "its metadata document has no redirect_uris", nil}
	case doc.ApplicationType != "" && doc.ApplicationType != "web" && doc.ApplicationType != "native":
		return nil, 0, &Error{id, fmt.Sprintf("its metadata document has application_type %q; use web (the default) or native", doc.ApplicationType), nil}
	}
	c := &Client{ID: id, Name: doc.ClientName, URI: doc.ClientURI, RedirectURIs: doc.RedirectURIs,
		Native: doc.ApplicationType == "native", AuthMethod: AuthNone}
	for i, u := range doc.RedirectURIs {
		if err := CheckRedirectURI(u, c.Native); err != nil {
			return nil, 0, &Error{id, fmt.Sprintf("its metadata document's redirect_uris[%d] %v", i, err), nil}
		}
	}
	if doc.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		if err := c.setKeys(doc.JWKS, doc.JWKSURI); err != nil {
			return nil, 0, err
		}
	}
	if c.Name == "" {
		c.Name = c.Host()
	}
	return c, cacheTTL(resp.Header), nil
}

// setKeys makes c a private_key_jwt client with the document's jwks or
// jwks_uri: exactly one of them.
func (c *Client) setKeys(jwks json.RawMessage, jwksURI string) error {
	hasJWKS := len(jwks) > 0 && string(jwks) != "null"
	switch {
	case hasJWKS && jwksURI != "":
		return &Error{c.ID, "its metadata document has both jwks and jwks_uri; a private_key_jwt client publishes its keys in exactly one of them", nil}
	case !hasJWKS && jwksURI == "":
		return &Error{c.ID, "its metadata document asks for private_key_jwt but has neither jwks nor jwks_uri; publish the client's public keys in one of them", nil}
	case hasJWKS:
		set, err := parseKeySet(jwks)
		if err != nil {
			return &Error{c.ID, "its metadata document's jwks " + err.Error(), nil}
		}
		c.JWKS = set
	default:
		if err := checkJWKSURI(jwksURI); err != nil {
			return &Error{c.ID, "its metadata document's " + err.Error(), nil}
		}
		c.JWKSURI = jwksURI
	}
	c.AuthMethod = AuthPrivateKeyJWT
	return nil
}

// cacheTTL reads Cache-Control (RFC 9111) and bounds it.
func cacheTTL(h http.Header) time.Duration {
	ttl := minCache
	for d := range strings.SplitSeq(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, minCache), maxCache)
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
