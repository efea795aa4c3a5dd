// Package connect is the proxy's OAuth client towards a route's remote
// server: it decides how to authorize (static endpoints, or discovery and
// then the client identity: pre-registered, the route's own Client ID
// Metadata Document, dynamic registration), registers dynamically when it
// must, sends the user's browser to the remote authorization server, and
// redeems the answer into an upstream token.
package connect

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// The route's own paths towards the remote authorization server.
const (
	// PathClientMetadata serves the route's Client ID Metadata Document.
	PathClientMetadata = "/.mcp-proxy/client-metadata.json"
	// PathCallback is where the remote authorization server sends the
	// browser back.
	PathCallback = "/.mcp-proxy/upstream/callback"
)

// Namespaces of the flow's records.
const (
	NSPending       store.Namespace = "pending"
	NSRegistrations store.Namespace = "registrations"
)

// Registration is a client the proxy registered dynamically (RFC 7591) for
// one route at one authorization server; every user of the route shares it.
type Registration struct {
	ClientID     string
	Secret       string
	SecretInBody bool
}

// Flow is one route's OAuth client.
type Flow struct {
	Route         *config.Route
	Discovery     *upstream.Discoverer
	HTTP          *http.Client
	Pending       store.Records[Pending]
	Registrations store.Records[Registration]
	Metrics       *metrics.Metrics
	Log           *slog.Logger
	Now           func() time.Time

	registering singleflight.Group
}

// ClientID is the route's client id where it registers by Client ID
// Metadata Document: the document's own URL.
func (f *Flow) ClientID() string { return f.Route.Origin() + PathClientMetadata }

// RedirectURL is the route's upstream callback.
func (f *Flow) RedirectURL() string { return f.Route.Origin() + PathCallback }

// Plan decides how the proxy authorizes to the remote endpoint upstreamURL
// for a user: static endpoints, or discovery followed by the client
// identity in order: the pre-registered client, the route's own Client ID
// Metadata Document, dynamic registration (when allowed), else an error
// that names what is missing. noAuth reports a remote server that needs
// no authorization. scope is what the MCP client asked the proxy for.
func (f *Flow) Plan(ctx context.Context, upstreamURL, scope, subject string) (g *upstream.Grant, noAuth bool, err error) {
	srv := f.Route.Server()
	pre := srv.UpstreamOAuth2
	shape := func(g *upstream.Grant) *upstream.Grant {
		if pre != nil {
			g.Audience, g.OmitResource = pre.Audience, pre.OmitResource
		}
		return g
	}
	if pre.Registered() && pre.Endpoint != nil {
		return shape(&upstream.Grant{AuthURL: pre.Endpoint.AuthURL, TokenURL: pre.Endpoint.TokenURL, ClientID: pre.ClientID,
			Resource: upstreamURL, Scopes: pre.Scopes, Method: upstream.MethodStatic}), false, nil
	}
	d, err := f.discover(ctx, upstreamURL)
	if err != nil || d.NoAuth {
		return nil, err == nil, err
	}
	g = &upstream.Grant{
		Issuer:        d.Issuer,
		AuthURL:       d.AS.AuthorizationEndpoint,
		TokenURL:      d.AS.TokenEndpoint,
		RevocationURL: d.AS.RevocationEndpoint,
		Resource:      d.Resource,
		Scopes:        d.Scopes,
		IssRequired:   d.AS.AuthorizationResponseIssParameterSupported,
	}
	switch {
	case pre.Registered():
		g.ClientID, g.Method = pre.ClientID, upstream.MethodPreregistered
		g.SecretInBody = pre.ClientSecret != "" && !slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic") &&
			slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_post")
	case d.SupportsCIMD():
		g.ClientID, g.Method = f.ClientID(), upstream.MethodCIMD
	case srv.DynamicClientRegistration && d.AS.RegistrationEndpoint != "":
		reg, err := f.register(ctx, d)
		if err != nil {
			f.Discovery.Invalidate(upstreamURL)
			f.Failed(ctx, subject, apierror.CodeRegistrationUnavailable, d.Issuer, err)
			return nil, false, apierror.Wrap(err, apierror.CodeRegistrationUnavailable, http.StatusBadGateway,
				"The remote authorization server %s refused the proxy's dynamic registration: %v", d.Issuer, err)
		}
		g.ClientID, g.Method = reg.ClientID, upstream.MethodDCR
		g.SecretInBody = reg.SecretInBody
	default:
		f.Discovery.Invalidate(upstreamURL)
		e := apierror.New(apierror.CodeRegistrationUnavailable, http.StatusBadGateway,
			"The remote authorization server %s does not accept Client ID Metadata Documents, and this route allows no other way to register. Register the proxy there and set mcp.server.upstream_oauth2.client_id, or set mcp.server.dynamic_client_registration: true if it offers dynamic registration.", d.Issuer)
		f.Failed(ctx, subject, e.Code, d.Issuer, nil)
		return nil, false, e
	}
	switch {
	case pre != nil && len(pre.Scopes) > 0:
		g.Scopes = pre.Scopes
	case srv.PassScopes && scope != "":
		g.Scopes = strings.Fields(scope)
	}
	return shape(g), false, nil
}

// discover runs (or reuses) discovery for the remote endpoint and logs it.
func (f *Flow) discover(ctx context.Context, upstreamURL string) (*upstream.Discovery, error) {
	d, hit, err := f.Discovery.Discover(ctx, upstreamURL, f.Route.Server().AuthorizationServerURL)
	if err != nil {
		step := ""
		var de *upstream.Error
		if errors.As(err, &de) {
			step = de.Step
		}
		f.Log.Warn("discovery failed", slog.String("event", "discovery_failed"), slog.String("upstream", upstreamURL),
			slog.String("step", step), slog.String("error", err.Error()), slog.String("request_id", apierror.RequestID(ctx)))
		return nil, apierror.Wrap(err, apierror.CodeDiscoveryFailed, http.StatusBadGateway, "%s", err.Error())
	}
	cache := "miss"
	if hit {
		cache = "hit"
		f.Metrics.DiscoveryCache(metrics.DiscoveryHit)
	} else {
		f.Metrics.DiscoveryCache(metrics.DiscoveryMiss)
	}
	f.Log.Info("discovery", slog.String("event", "discovery_completed"), slog.String("upstream", upstreamURL),
		slog.String("cache", cache), slog.String("request_id", apierror.RequestID(ctx)))
	return d, nil
}

// Failed logs a failed upstream authorization.
func (f *Flow) Failed(ctx context.Context, subject string, code apierror.Code, issuer string, err error) {
	attrs := []any{slog.String("event", "authorization_failed"), slog.String("user", subject),
		slog.String("error_code", string(code)), slog.String("issuer", issuer),
		slog.String("request_id", apierror.RequestID(ctx))}
	if err != nil {
		attrs = append(attrs, slog.String("cause", err.Error()))
	}
	f.Log.Warn("upstream authorization failed", attrs...)
}

// ClientSecret returns the secret of the client a grant uses: from the
// configuration for a registered client, from the registration for a
// dynamically registered one, none for a Client ID Metadata Document.
func (f *Flow) ClientSecret(ctx context.Context, g *upstream.Grant) string {
	switch g.Method {
	case upstream.MethodPreregistered, upstream.MethodStatic:
		if pre := f.Route.Server().UpstreamOAuth2; pre != nil && pre.ClientID == g.ClientID {
			return pre.ClientSecret
		}
	case upstream.MethodDCR:
		reg, err := f.Registrations.Get(context.WithoutCancel(ctx), f.registrationKey(g.Issuer))
		if err == nil && reg != nil && reg.ClientID == g.ClientID {
			return reg.Secret
		}
	}
	return ""
}

func (f *Flow) registrationKey(issuer string) string { return f.Route.Key() + "\x00" + issuer }

// register returns the route's dynamic registration at the discovered
// authorization server, registering once when there is none. Every user
// of the route shares it; concurrent first authorizations share one
// registration request.
func (f *Flow) register(ctx context.Context, d *upstream.Discovery) (*Registration, error) {
	key := f.registrationKey(d.Issuer)
	if reg, err := f.Registrations.Get(ctx, key); err != nil || reg != nil {
		return reg, err
	}
	v, err, _ := f.registering.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if reg, err := f.Registrations.Get(ctx, key); err != nil || reg != nil {
			return reg, err
		}
		resp, err := upstream.Register(ctx, f.HTTP, d.AS.RegistrationEndpoint, "mcp-proxy for "+f.Route.Key(), f.Route.Origin(), f.RedirectURL())
		if err != nil {
			return nil, err
		}
		reg := &Registration{ClientID: resp.ClientID, Secret: resp.ClientSecret}
		if reg.Secret != "" && (resp.TokenEndpointAuthMethod == "client_secret_post" ||
			resp.TokenEndpointAuthMethod == "" && !slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic")) {
			reg.SecretInBody = true
		}
		if err := f.Registrations.Put(ctx, key, reg, time.Time{}); err != nil {
			return nil, err
		}
		f.Log.Info("registered with the remote authorization server", "event", "client_registered",
			"issuer", d.Issuer, "method", string(upstream.MethodDCR))
		return reg, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Registration), nil
}

// ClientMetadata serves the route's own Client ID Metadata Document: the
// proxy's client id at the remote authorization server is this URL.
func (f *Flow) ClientMetadata() map[string]any {
	return map[string]any{
		"client_id":                  f.ClientID(),
		"client_name":                "mcp-proxy for " + f.Route.Key(),
		"client_uri":                 f.Route.Origin(),
		"redirect_uris":              []string{f.RedirectURL()},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
}
