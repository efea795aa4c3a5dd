package authserver

import (
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/connect"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/policy"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// handOver gives a downstream authorization, once the user has signed in
// and approved the MCP client, to the upstream leg. When the leg is done at
// once (the user is connected already, the remote server needs no
// authorization, a service account's token came at once) the code
// follows; otherwise the browser is on its way to the remote authorization
// server and the leg comes back through Resume.
func (s *Server) handOver(w http.ResponseWriter, r *http.Request, ar *AuthRequest, sess *login.Session) error {
	if fresh, err := s.admit(r, sess); err != nil {
		return err
	} else if !fresh {
		return s.startLogin(w, r, ar, "")
	}
	res, err := s.o.Upstream.Authorize(w, r, connect.Request{
		ID: ar.ID, Subject: sess.Subject, Client: ar.ClientID, Upstream: ar.Upstream, Scope: ar.Scope,
		BindingKey: binding.Key(s.binding, s.route, sess.Subject, ar.BindingSession, ar.Upstream), Started: ar.Created,
	})
	if err != nil || res == nil {
		return err
	}
	return s.issueCode(w, r, ar, &sess.Identity, res.BindingKey)
}

// Resume is where the upstream leg hands a downstream authorization back
// after the remote authorization server's callback: the MCP client gets its
// code.
func (s *Server) Resume(w http.ResponseWriter, r *http.Request, res connect.Result) error {
	ar, err := s.requests.Get(r.Context(), store.SecretKey(res.RequestID))
	if err != nil {
		return apierror.Storage(err)
	}
	if ar == nil {
		return apierror.New(apierror.CodeInvalidRequest,
			"The remote server is connected, but the MCP client's authorization request expired; start again from your MCP client.")
	}
	// The upstream leg checked that this browser's user started the
	// authorization; the code carries the claims of their session.
	sess, err := s.session(r)
	if err != nil {
		return apierror.Storage(err)
	}
	if sess == nil || sess.Subject != res.Subject {
		return apierror.New(apierror.CodeWrongUser,
			"This answer from the remote authorization server belongs to an authorization started by another user or in another browser, so the proxy did not use it. Start again from your MCP client.")
	}
	return s.issueCode(w, r, ar, &sess.Identity, res.BindingKey)
}

// admit applies the route's access policy at authorization, before
// consent and before the upstream leg: a refused user gets the refusal
// page and the remote server hears nothing. fresh is false when the
// session's claims are too old, or from other sign-in settings, for the
// policy to decide on: the user signs in again.
func (s *Server) admit(r *http.Request, sess *login.Session) (fresh bool, err error) {
	if s.enterprise() {
		// An enterprise route exchanges the user's ID token: without a
		// valid one, the user signs in again to get one.
		t, err := s.o.IDTokens.Valid(r.Context(), sess.Subject)
		if err != nil {
			return false, storageError(err)
		}
		if t == nil {
			return false, nil
		}
	}
	p := s.o.Policy
	if p == nil {
		return true, nil
	}
	if !p.Fresh(sess.Identity) {
		return false, nil
	}
	d := p.Route(sess.Identity)
	if d.Allowed {
		s.o.Metrics.Policy(s.route, metrics.PolicyAllowed)
		return true, nil
	}
	s.o.Metrics.Policy(s.route, metrics.PolicyDenied)
	policy.Denied(r, s.o.Log, s.o.Audit, sess.Identity, "", "", d)
	return true, policy.RouteDenied(sess.Identity, s.route)
}

var _ connect.Resumer = (*Server)(nil)

// enterprise reports whether the route gets remote tokens by
// enterprise-managed authorization, from the user's ID token.
func (s *Server) enterprise() bool { return s.o.Route.Server().Enterprise != nil }
