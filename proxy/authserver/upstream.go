package authserver

import (
	"log/slog"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
)

// toUpstream makes sure the user has an upstream token for the request's
// remote endpoint, sending the browser to the remote authorization server
// when there is none (or when the remote server asked for more scope), then
// issues the code.
func (s *Server) toUpstream(w http.ResponseWriter, r *http.Request, ar *AuthRequest, sess *Session) error {
	ctx := r.Context()
	key := binding.Key(s.binding, s.route, sess.Subject, ar.BindingSession, ar.Upstream)
	existing, err := s.o.Tokens.Get(ctx, key)
	if err != nil {
		return storageError(err)
	}
	if existing != nil && !existing.NeedsMoreScope() {
		return s.issueCode(w, r, ar, sess.Subject, key)
	}
	failed := func(err error) error {
		s.o.Metrics.AuthorizationFlow(s.route, metrics.AuthFailed, s.o.Now().Sub(ar.Created))
		return err
	}
	grant, noAuth, err := s.o.Flow.Plan(ctx, ar.Upstream, ar.Scope, sess.Subject)
	if err != nil {
		return failed(err)
	}
	if noAuth {
		return s.issueCode(w, r, ar, sess.Subject, "")
	}
	if s.binding == config.BindingServiceAccount {
		sa := s.o.Route.Server().ServiceAccount
		if sa.ClientCredentials {
			if err := s.o.Tokens.ClientCredentials(ctx, grant, key, sess.Subject); err != nil {
				return failed(err)
			}
			return s.issueCode(w, r, ar, sess.Subject, key)
		}
		if sess.Subject != sa.Admin {
			s.o.Flow.Failed(ctx, sess.Subject, apierror.CodeServiceAccountMissing, grant.Issuer, nil)
			return apierror.New(apierror.CodeServiceAccountMissing, http.StatusServiceUnavailable,
				"This route uses one shared connection to %s, which its administrator %s has not set up yet. Ask them to connect once.", ar.Upstream, sa.Admin)
		}
	}
	if existing != nil {
		grant.Scopes = tokens.UnionScopes(grant.Scopes, existing.Scopes, existing.NeedScopes)
	}
	to, err := s.o.Flow.Begin(ctx, grant, sess.Subject, ar.ClientID, ar.ID, key, ar.Upstream)
	if err != nil {
		return storageError(err)
	}
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// upstreamCallback is where the remote authorization server sends the
// browser back. It checks state (single use, unexpired), that the same user
// is signed in, and iss (RFC 9207) before it redeems the code.
func (s *Server) upstreamCallback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	stateInvalid := apierror.New(apierror.CodeStateInvalid, http.StatusBadRequest,
		"This answer from the remote authorization server has an unknown, already used or expired state, so the proxy did not use it. Start again from your MCP client.")
	// The state is read first and consumed only once the answer is known to
	// belong to this browser's user: a link opened by someone else must not
	// destroy the authorization of the user it belongs to.
	pend, err := s.o.Flow.Lookup(ctx, q.Get("state"))
	if err != nil {
		return storageError(err)
	}
	if pend == nil {
		return stateInvalid
	}
	sess, err := s.session(r)
	if err != nil {
		return storageError(err)
	}
	if sess == nil || sess.Subject != pend.Subject {
		return apierror.New(apierror.CodeWrongUser, http.StatusForbidden,
			"This answer from the remote authorization server belongs to an authorization started by another user or in another browser, so the proxy did not use it. Start again from your MCP client.")
	}
	if !s.o.Flow.Take(ctx, pend) {
		return stateInvalid
	}
	ut, err := s.o.Flow.Redeem(ctx, pend, q, s.o.Flow.ClientSecret(ctx, &pend.Grant))
	if err != nil {
		return err
	}
	if prev, _ := s.o.Tokens.Get(ctx, pend.BindingKey); prev != nil {
		ut.StepUps = prev.StepUps // a step-up keeps counting until an answer succeeds
	}
	if err := s.o.Tokens.Put(ctx, ut); err != nil {
		return storageError(err)
	}
	s.o.Metrics.Registration(metrics.RegistrationMethod(pend.Grant.Method.Metric()))
	s.o.Log.Info("upstream token acquired", s.logAttrs(ctx, slog.String("event", "token_acquired"), slog.String("user", pend.Subject),
		slog.String("binding", string(s.binding)), slog.String("issuer", pend.Grant.Issuer))...)
	s.o.Audit.Try(ctx, pend.Subject, ut.Key, "token_acquired", "allowed", nil)
	ar, err := s.requests.Get(ctx, store.SecretKey(pend.RequestID))
	if err != nil {
		return storageError(err)
	}
	if ar == nil {
		return apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"The remote server is connected, but the MCP client's authorization request expired; start again from your MCP client.")
	}
	return s.issueCode(w, r, ar, pend.Subject, pend.BindingKey)
}
