// Package connect is the sole owner of the upstream leg: the proxy's OAuth
// client towards a route's remote server. The proxy's authorization server
// hands it a downstream authorization once the user has signed in and
// approved the MCP client (Authorize); connect decides how to authorize
// (static endpoints, or discovery and then the client identity:
// pre-registered, the route's own Client ID Metadata Document, dynamic
// registration), registers dynamically when it must, gets a service
// account's token with the client credentials grant, sends the user's
// browser to the remote authorization server, serves the callback and the
// route's Client ID Metadata Document, redeems the code, stores the token
// through tokens, and hands the authorization back once, with the result
// (Result; Resumer).
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
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
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

// NSPending holds the authorizations in flight at remote authorization
// servers, by the hash of their state.
const NSPending store.Namespace = "pending"

// Flow is one route's OAuth client.
type Flow struct {
	Route       *config.Route
	Discovery   *upstream.Discoverer
	HTTP        *http.Client
	Tokens      *tokens.Source
	Credentials *credentials.Store
	// Sessions tell who is signed in, for the callback's check that the
	// answer reached the browser of the user who asked.
	Sessions  *login.Sessions
	Pending   store.Records[Pending]
	Responder *apierror.Responder
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	Now       func() time.Time
	// Done resumes a downstream authorization that waited for the remote
	// authorization server (the proxy's authorization server).
	Done Resumer

	registering singleflight.Group
}

// Handler returns the handler of one of the flow's own paths on the route
// host, or nil when path is not one.
func (f *Flow) Handler(path string) http.Handler {
	switch path {
	case PathClientMetadata:
		return f.Responder.JSON(f.clientMetadata)
	case PathCallback:
		return f.Responder.Pages(f.callback)
	}
	return nil
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
		switch pre.DPoPMode() {
		case config.DPoPRequired:
			g.DPoP, g.DPoPRequired = true, true
		case config.DPoPOff:
			g.DPoP = false
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
		DPoP:          d.DPoP,
	}
	switch {
	case srv.ServiceAccount != nil && srv.ServiceAccount.WorkloadIdentity != nil:
		if err := f.workloadGrant(ctx, d, g, subject); err != nil {
			return nil, false, err
		}
	case srv.Enterprise != nil && pre.Registered():
		if err := f.enterpriseGrant(ctx, d, subject); err != nil {
			return nil, false, err
		}
		fallthrough
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
			return nil, false, apierror.Wrap(err, apierror.CodeRegistrationUnavailable,
				"The remote authorization server %s refused the proxy's dynamic registration: %v", d.Issuer, err)
		}
		g.ClientID, g.Method = reg.ClientID, upstream.MethodDCR
		g.SecretInBody = reg.SecretInBody
	default:
		f.Discovery.Invalidate(upstreamURL)
		e := apierror.New(apierror.CodeRegistrationUnavailable,
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
		f.Log.Warn("discovery failed", event.DiscoveryFailed.Attr(), slog.String("upstream", upstreamURL),
			slog.String("step", step), slog.String("error", err.Error()), slog.String("request_id", apierror.RequestID(ctx)))
		return nil, apierror.Wrap(err, apierror.CodeDiscoveryFailed, "%s", err.Error())
	}
	cache := "miss"
	if hit {
		cache = "hit"
		f.Metrics.DiscoveryCache(metrics.DiscoveryHit)
	} else {
		f.Metrics.DiscoveryCache(metrics.DiscoveryMiss)
	}
	f.Log.Info("discovery", event.DiscoveryCompleted.Attr(), slog.String("upstream", upstreamURL),
		slog.String("cache", cache), slog.String("request_id", apierror.RequestID(ctx)))
	return d, nil
}

// Failed logs a failed upstream authorization.
func (f *Flow) Failed(ctx context.Context, subject string, code apierror.Code, issuer string, err error) {
	attrs := []any{event.AuthorizationFailed.Attr(), slog.String("user", subject),
		slog.String("error_code", string(code)), slog.String("issuer", issuer),
		slog.String("request_id", apierror.RequestID(ctx))}
	if err != nil {
		attrs = append(attrs, slog.String("cause", err.Error()))
	}
	f.Log.Warn("upstream authorization failed", attrs...)
}

// register returns the route's dynamic registration at the discovered
// authorization server, registering once when there is none. Every user
// of the route shares it; concurrent first authorizations share one
// registration request.
func (f *Flow) register(ctx context.Context, d *upstream.Discovery) (*credentials.Registration, error) {
	if reg, err := f.Credentials.Registration(ctx, d.Issuer); err != nil || reg != nil {
		return reg, err
	}
	v, err, _ := f.registering.Do(d.Issuer, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if reg, err := f.Credentials.Registration(ctx, d.Issuer); err != nil || reg != nil {
			return reg, err
		}
		resp, err := upstream.Register(ctx, f.HTTP, d.AS.RegistrationEndpoint, "mcp-proxy for "+f.Route.Key(), f.Route.Origin(), f.RedirectURL())
		if err != nil {
			return nil, err
		}
		reg := &credentials.Registration{ClientID: resp.ClientID, Secret: resp.ClientSecret}
		if reg.Secret != "" && (resp.TokenEndpointAuthMethod == "client_secret_post" ||
			resp.TokenEndpointAuthMethod == "" && !slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic")) {
			reg.SecretInBody = true
		}
		if err := f.Credentials.SaveRegistration(ctx, d.Issuer, reg); err != nil {
			return nil, err
		}
		f.Log.Info("registered with the remote authorization server", event.ClientRegistered.Attr(),
			"issuer", d.Issuer, "method", string(upstream.MethodDCR))
		return reg, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*credentials.Registration), nil
}

// clientMetadata serves the route's own Client ID Metadata Document: the
// proxy's client id at the remote authorization server is this URL.
func (f *Flow) clientMetadata(w http.ResponseWriter, r *http.Request) error {
	return pages.Document(w, r, false, map[string]any{
		"client_id":                  f.ClientID(),
		"client_name":                "mcp-proxy for " + f.Route.Key(),
		"client_uri":                 f.Route.Origin(),
		"redirect_uris":              []string{f.RedirectURL()},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
}
