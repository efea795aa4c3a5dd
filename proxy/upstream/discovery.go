// Package upstream is the proxy's OAuth client side: it discovers what a
// remote MCP server needs (RFC 9728 protected resource metadata, RFC 8414 or
// OpenID Connect authorization server metadata), builds authorization
// requests, exchanges codes and refreshes tokens.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/tracing"
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
	// DPoP is true when the remote server asks for DPoP-bound tokens
	// (RFC 9449): its challenge uses the DPoP scheme, or its protected
	// resource metadata requires them or lists ES256 for their proofs.
	DPoP bool
}

// SupportsCIMD reports whether the authorization server accepts Client ID
// Metadata Document URLs as client ids.
func (d *Discovery) SupportsCIMD() bool { return d.AS != nil && d.AS.ClientIDMetadataDocumentSupported }

// Error is a discovery failure with the steps that were tried, so that the
// message tells an operator exactly where the chain broke.
type Error struct {
	URL  string
	Step string // "protected resource metadata", "authorization server metadata", ...
	Err  error
}

// Error returns the operator-facing message, which names the step's
// problem and what to do.
func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Discoverer runs discovery and caches its results.
type Discoverer struct {
	// HTTP fetches metadata. It must enforce the SSRF guard and must not
	// follow redirects.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowHost, when set, vets every host that a remote document names
	// (a resource_metadata hint, an authorization server, an endpoint)
	// before the proxy uses it; an error refuses the host.
	AllowHost func(host string) error

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
	for k := range c.cache {
		if k == url || strings.HasPrefix(k, url+"\x00") {
			delete(c.cache, k)
		}
	}
}

// Discover returns the discovery for the remote MCP endpoint url, from the
// cache when it is fresh. fallbackIssuer, when set, is the authorization
// server to use if the remote server publishes no protected resource
// metadata. The bool reports a cache hit.
func (c *Discoverer) Discover(ctx context.Context, url, fallbackIssuer string) (*Discovery, bool, error) {
	ctx, span := tracing.Start(ctx, tracing.SpanDiscovery, trace.SpanKindInternal)
	defer span.End()
	d, hit, err := c.lookup(ctx, url, fallbackIssuer)
	if span.IsRecording() {
		cache := "miss"
		if hit {
			cache = "hit"
		}
		span.SetAttributes(tracing.DiscoveryCache.String(cache))
		span.SetAttributes(tracing.ServerAddress.String(hostOf(url)))
		var de *Error
		if errors.As(err, &de) {
			span.SetAttributes(tracing.ErrorType.String("discovery_failed"), tracing.DiscoveryStep.String(de.Step))
			span.SetStatus(codes.Error, "")
		}
	}
	return d, hit, err
}

// hostOf is the host of a URL, for a span: never its path or query.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Hostname()
	}
	return ""
}

func (c *Discoverer) lookup(ctx context.Context, url, fallbackIssuer string) (*Discovery, bool, error) {
	key := url + "\x00" + fallbackIssuer
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.d, true, nil
	}
	c.mu.Unlock()
	d, err := c.discover(ctx, url, fallbackIssuer)
	if err != nil {
		c.Invalidate(url)
		return nil, false, err
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = make(map[string]cached)
	}
	c.cache[key] = cached{d: d, expires: c.now().Add(DiscoveryTTL)}
	c.mu.Unlock()
	return d, false, nil
}

func (c *Discoverer) allow(rawURL, what string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", what, rawURL)
	}
	if u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%s %s does not use https", what, rawURL)
	}
	if c.AllowHost != nil {
		if err := c.AllowHost(u.Hostname()); err != nil {
			return fmt.Errorf("%s %s: %w", what, rawURL, err)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

func (c *Discoverer) discover(ctx context.Context, mcpURL, fallbackIssuer string) (*Discovery, error) {
	d := &Discovery{URL: mcpURL}
	fail := func(step, format string, args ...any) error {
		return &Error{URL: mcpURL, Step: step, Err: sentencef(format, args...)}
	}
	status, challenges, err := c.probe(ctx, mcpURL)
	if err != nil {
		return nil, fail(stepProbe, "The remote MCP server %s could not be reached: %v", mcpURL, unwrapURLError(err))
	}
	hint := ""
	for _, ch := range challenges {
		if ch.Scheme != "bearer" && ch.Scheme != "dpop" {
			continue
		}
		if ch.Scheme == "dpop" {
			d.DPoP = true
		}
		if u := ch.Params["resource_metadata"]; u != "" {
			hint = u
		}
		if s := ch.Params["scope"]; s != "" {
			d.Scopes = strings.Fields(s)
		}
	}
	if hint != "" {
		if err := c.allow(hint, "the resource_metadata the remote server named,"); err != nil {
			return nil, fail(stepPRM, "The proxy refused %v", err)
		}
	}

	prm, prmURL, tried, err := c.protectedResourceMetadata(ctx, hint, mcpURL)
	var missing *noMetadataError
	switch {
	case err == nil:
		d.Resource, d.MetadataURL = prm.Resource, prmURL
		d.DPoP = d.DPoP || prm.DPOPBoundAccessTokensRequired || slices.Contains(prm.DPOPSigningAlgValuesSupported, dpop.Alg)
		if len(d.Scopes) == 0 {
			d.Scopes = prm.ScopesSupported
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, fail(stepPRM, "The protected resource metadata at %s names no authorization_servers.", prmURL)
		}
		d.Issuer = prm.AuthorizationServers[0]
		if err := c.allow(d.Issuer, "the authorization server"); err != nil {
			return nil, fail(stepPRM, "The proxy refused %v", err)
		}
	case errors.As(err, &missing) && fallbackIssuer != "":
		d.Resource, d.Issuer = mcpURL, fallbackIssuer
	case errors.As(err, &missing) && status >= 200 && status < 300:
		d.NoAuth = true // it answered without a token and publishes no metadata: it needs no OAuth
		return d, nil
	case errors.As(err, &missing) && status != http.StatusUnauthorized:
		return nil, fail(stepProbe, "The remote MCP server %s answered %d to an MCP client's first request without a token, with no challenge, and publishes no protected resource metadata (tried %s), so the proxy cannot tell whether it needs authorization. Check the route's to, or set mcp.server.authorization_server_url.", mcpURL, status, joinAnd(tried))
	case errors.As(err, &missing):
		return nil, fail(stepPRM, "The remote MCP server %s asks for authorization but publishes no protected resource metadata (tried %s). Set mcp.server.authorization_server_url to its authorization server.", mcpURL, joinAnd(tried))
	default:
		return nil, fail(stepPRM, "%v", err)
	}

	asm, err := c.checkedAuthServerMetadata(ctx, d.Issuer)
	if err != nil {
		return nil, &Error{URL: mcpURL, Step: stepASM, Err: err}
	}
	d.AS = asm
	return d, nil
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// sentencef formats an operator-facing message: a full sentence, shown as
// is on error pages and in JSON error bodies.
func sentencef(format string, args ...any) error { return sentence(fmt.Sprintf(format, args...)) }

// sentence is an error whose text is a message for people.
type sentence string

func (s sentence) Error() string { return string(s) }
