// Package upstream is the proxy's OAuth client side: it discovers what a
// remote MCP server needs (RFC 9728 protected resource metadata, RFC 8414 or
// OpenID Connect authorization server metadata), builds authorization
// requests, exchanges codes and refreshes tokens.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// DiscoveryTTL is how long a successful discovery is reused. Metadata changes
// rarely; a failure anywhere in the flow drops the cached entry at once.
const DiscoveryTTL = 15 * time.Minute

// probeTimeout bounds the unauthenticated request that asks the remote
// server for its challenge.
const probeTimeout = 10 * time.Second

// Discovery is what the proxy learned about a remote MCP server.
type Discovery struct {
	// URL is the remote MCP endpoint that was probed.
	URL string
	// NoAuth is true when the remote server answered without asking for
	// authorization and publishes no protected resource metadata.
	NoAuth bool
	// Resource is the canonical resource identifier (RFC 8707) to request
	// tokens for: the `resource` of the protected resource metadata.
	Resource string
	// MetadataURL is where the protected resource metadata was found.
	MetadataURL string
	// Scopes to request: the challenge's scope, else scopes_supported, else none.
	Scopes []string
	// Issuer and the authorization server's metadata.
	Issuer string
	AS     *oauthex.AuthServerMeta
}

// SupportsCIMD reports whether the authorization server accepts Client ID
// Metadata Document URLs as client ids.
func (d *Discovery) SupportsCIMD() bool { return d.AS != nil && d.AS.ClientIDMetadataDocumentSupported }

// Error is a discovery failure with the steps that were tried, so that the
// message tells an operator exactly where the chain broke.
type Error struct {
	URL   string
	Step  string // "protected resource metadata", "authorization server metadata", ...
	Tried []string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "discovery for %s failed at %s: %v", e.URL, e.Step, e.Err)
	if len(e.Tried) > 0 {
		b.WriteString(" (tried: " + strings.Join(e.Tried, "; ") + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Discoverer runs discovery and caches its results.
type Discoverer struct {
	// HTTP fetches metadata. It must enforce the SSRF guard and must not
	// follow redirects to other hosts.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	d       *Discovery
	expires time.Time
}

func (c *Discoverer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Invalidate drops the cached discovery for url, so the next use discovers
// afresh. The flow calls it whenever something learned from it fails.
func (c *Discoverer) Invalidate(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, url)
}

// Discover returns the discovery for the remote MCP endpoint url, from the
// cache when it is fresh. The bool reports a cache hit.
func (c *Discoverer) Discover(ctx context.Context, url string) (*Discovery, bool, error) {
	c.mu.Lock()
	if e, ok := c.cache[url]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.d, true, nil
	}
	c.mu.Unlock()
	d, err := c.discover(ctx, url)
	if err != nil {
		c.Invalidate(url)
		return nil, false, err
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = make(map[string]cached)
	}
	c.cache[url] = cached{d: d, expires: c.now().Add(DiscoveryTTL)}
	c.mu.Unlock()
	return d, false, nil
}

func (c *Discoverer) discover(ctx context.Context, mcpURL string) (*Discovery, error) {
	d := &Discovery{URL: mcpURL}
	status, challenges, err := c.probe(ctx, mcpURL)
	if err != nil {
		return nil, &Error{URL: mcpURL, Step: "the first request to the remote MCP server", Err: err}
	}
	hint := ""
	for _, ch := range challenges {
		if ch.Scheme != "bearer" {
			continue
		}
		if u := ch.Params["resource_metadata"]; u != "" {
			hint = u
		}
		if s := ch.Params["scope"]; s != "" {
			d.Scopes = strings.Fields(s)
		}
	}

	prm, prmURL, tried, err := c.protectedResourceMetadata(ctx, hint, mcpURL)
	if err != nil {
		if status != http.StatusUnauthorized && hint == "" {
			// No challenge and no metadata: the remote server needs no OAuth.
			d.NoAuth = true
			return d, nil
		}
		return nil, &Error{URL: mcpURL, Step: "protected resource metadata", Tried: tried, Err: err}
	}
	d.Resource = prm.Resource
	d.MetadataURL = prmURL
	if len(d.Scopes) == 0 {
		d.Scopes = prm.ScopesSupported
	}
	if len(prm.AuthorizationServers) == 0 {
		return nil, &Error{URL: mcpURL, Step: "protected resource metadata", Tried: tried,
			Err: fmt.Errorf("%s names no authorization_servers", prmURL)}
	}
	d.Issuer = prm.AuthorizationServers[0]
	asm, err := auth.GetAuthServerMetadata(ctx, d.Issuer, c.HTTP)
	if err == nil && asm == nil {
		err = fmt.Errorf("no metadata at the RFC 8414 or OpenID Connect well-known locations of %s", d.Issuer)
	}
	if err != nil {
		return nil, &Error{URL: mcpURL, Step: "authorization server metadata", Err: err}
	}
	if !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		return nil, &Error{URL: mcpURL, Step: "authorization server metadata",
			Err: fmt.Errorf("%s does not support PKCE with S256 (code_challenge_methods_supported: %v)", d.Issuer, asm.CodeChallengeMethodsSupported)}
	}
	if asm.AuthorizationEndpoint == "" || asm.TokenEndpoint == "" {
		return nil, &Error{URL: mcpURL, Step: "authorization server metadata",
			Err: fmt.Errorf("%s has no authorization_endpoint or token_endpoint", d.Issuer)}
	}
	d.AS = asm
	return d, nil
}

// probe sends one unauthenticated GET to the MCP endpoint and returns the
// status and the WWW-Authenticate challenges. The body is not read.
func (c *Discoverer) probe(ctx context.Context, mcpURL string) (int, []oauthex.Challenge, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mcpURL, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("unreadable WWW-Authenticate header: %w", err)
	}
	return resp.StatusCode, challenges, nil
}

// protectedResourceMetadata tries the challenge's resource_metadata, then the
// path-suffixed and root well-known locations (RFC 9728 §3), and checks that
// the document's resource is the one its location promises (RFC 9728 §3.3).
func (c *Discoverer) protectedResourceMetadata(ctx context.Context, hint, mcpURL string) (*oauthex.ProtectedResourceMetadata, string, []string, error) {
	u, err := url.Parse(mcpURL)
	if err != nil {
		return nil, "", nil, err
	}
	type candidate struct{ url, resource string }
	var cands []candidate
	if hint != "" {
		cands = append(cands, candidate{hint, mcpURL})
	}
	origin := u.Scheme + "://" + u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource/" + p, mcpURL})
	}
	cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource", origin})

	var tried []string
	var last error
	for _, cand := range cands {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, cand.url, cand.resource, c.HTTP)
		if err == nil {
			return prm, cand.url, tried, nil
		}
		last = err
		tried = append(tried, fmt.Sprintf("%s: %v", cand.url, trimPrefix(err)))
	}
	return nil, "", tried, fmt.Errorf("no usable protected resource metadata: %w", last)
}

// trimPrefix drops the SDK's function-call prefix from an error for a
// shorter message.
func trimPrefix(err error) string {
	s := err.Error()
	if i := strings.Index(s, "): "); strings.HasPrefix(s, "GetProtectedResourceMetadata(") && i > 0 {
		return s[i+3:]
	}
	return s
}

// ErrNoCIMD is returned when the remote authorization server does not accept
// Client ID Metadata Document URLs and no other registration is configured.
var ErrNoCIMD = errors.New("the remote authorization server does not support Client ID Metadata Documents")
