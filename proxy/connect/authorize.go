package connect

import (
	"context"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Request is a downstream authorization the proxy's authorization server
// hands to the upstream leg once the user has signed in and approved the
// MCP client.
type Request struct {
	// ID names the downstream authorization request that waits.
	ID string
	// Subject is the signed-in user.
	Subject string
	// Client is the MCP client's id.
	Client string
	// Upstream is the remote MCP endpoint.
	Upstream string
	// Scope is what the MCP client asked the proxy for.
	Scope string
	// BindingKey names the upstream token the authorization is for.
	BindingKey string
	// Started is when the downstream authorization began.
	Started time.Time
}

// Result is what the upstream leg hands back: the downstream authorization
// RequestID may now get its code, for Subject, with the upstream token
// under BindingKey ("" when the remote server needs no authorization).
type Result struct {
	RequestID  string
	Subject    string
	BindingKey string
}

// Resumer finishes a downstream authorization that waited for the remote
// authorization server: the proxy's authorization server issues the MCP
// client's code.
type Resumer interface {
	Resume(w http.ResponseWriter, r *http.Request, res Result) error
}

// Authorize makes sure the user has an upstream token for req. When there
// is one (or the remote server needs none, or a service account's client
// credentials get one at once) it returns the result, and the caller
// issues the code; otherwise it sends the browser to the remote
// authorization server, returns nil, and the callback resumes the
// authorization through Done. A token the remote server asked more scope
// for is authorized again, for the union of the scopes.
func (f *Flow) Authorize(w http.ResponseWriter, r *http.Request, req Request) (*Result, error) {
	ctx := r.Context()
	done := &Result{RequestID: req.ID, Subject: req.Subject, BindingKey: req.BindingKey}
	existing, err := f.Tokens.Get(ctx, req.BindingKey)
	if err != nil {
		return nil, apierror.Storage(err)
	}
	if existing != nil && !existing.NeedsMoreScope() {
		return done, nil
	}
	failed := func(err error) (*Result, error) {
		f.Metrics.AuthorizationFlow(f.Route.Key(), metrics.AuthFailed, f.Now().Sub(req.Started))
		return nil, err
	}
	grant, noAuth, err := f.Plan(ctx, req.Upstream, req.Scope, req.Subject)
	if err != nil {
		return failed(err)
	}
	if noAuth {
		done.BindingKey = ""
		return done, nil
	}
	if f.Route.Server().Enterprise != nil {
		if existing != nil {
			grant.Scopes = tokens.UnionScopes(grant.Scopes, existing.Scopes, existing.NeedScopes)
		}
		if err := f.enterprise(ctx, grant, req); err != nil {
			return failed(err)
		}
		return done, nil
	}
	if f.Route.Server().Binding() == config.BindingServiceAccount {
		if sa := f.Route.Server().ServiceAccount; sa.ClientCredentials {
			if err := f.clientCredentials(ctx, grant, req); err != nil {
				return failed(err)
			}
			return done, nil
		} else if sa.WorkloadIdentity != nil {
			if err := f.jwtBearer(ctx, grant, req); err != nil {
				return failed(err)
			}
			return done, nil
		} else if req.Subject != sa.Admin {
			f.Failed(ctx, req.Subject, apierror.CodeServiceAccountMissing, grant.Issuer, nil)
			return nil, apierror.New(apierror.CodeServiceAccountMissing,
				"This route uses one shared connection to %s, which its administrator %s has not set up yet. Ask them to connect once.", req.Upstream, sa.Admin)
		}
	}
	if existing != nil {
		grant.Scopes = tokens.UnionScopes(grant.Scopes, existing.Scopes, existing.NeedScopes)
	}
	to, err := f.begin(ctx, grant, req)
	if err != nil {
		return nil, apierror.Storage(err)
	}
	http.Redirect(w, r, to, http.StatusFound)
	return nil, nil
}

// clientCredentials gets a service account route's shared token with the
// client credentials grant (RFC 6749 §4.4), acting for the signed-in user.
func (f *Flow) clientCredentials(ctx context.Context, g *upstream.Grant, req Request) error {
	t, err := f.Tokens.ClientCredentials(ctx, g, req.BindingKey, req.Subject)
	if err != nil {
		return err
	}
	return f.Tokens.Acquired(ctx, t, "client_credentials")
}
