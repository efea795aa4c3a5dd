package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// authorize is the downstream authorization endpoint. The MCP client's
// browser arrives here; it leaves with a code for the MCP client once the
// user has signed in, approved the client, and (the first time) consented
// at the remote authorization server.
func (rt *route) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if clientID == "" {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"The authorization request has no client_id; the MCP client must send one."))
		return
	}
	if allowed := rt.p.cfg.AllowedClientIDDomains; len(allowed) > 0 {
		if u, err := url.Parse(clientID); err == nil && !config.DomainAllowed(u.Hostname(), allowed) {
			rt.errorPage(w, r, apierror.New(apierror.CodeClientNotAllowed, http.StatusForbidden,
				"The MCP client %s is not allowed here: its host %s is not in allowed_client_id_domains.", clientID, u.Hostname()))
			return
		}
	}
	client, err := rt.p.clients.Resolve(r.Context(), clientID)
	if err != nil {
		msg := err.Error()
		var ce *clientid.Error
		if errors.As(err, &ce) {
			msg = "The MCP client cannot be used: " + ce.Error()
		}
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeInvalidClient, http.StatusBadRequest, "%s", msg))
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"Redirect_uri %q is not one of the redirect_uris the MCP client %s publishes.", redirectURI, client.ID))
		return
	}
	// From here on the redirect URI is trusted: errors go back to the client.
	state := q.Get("state")
	fail := func(code, desc string) { rt.redirectError(w, r, redirectURI, state, code, desc) }
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case q.Get("code_challenge") == "":
		fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
		return
	case q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		resource = rt.origin
	} else if !rt.ownsResource(resource) {
		fail("invalid_target", fmt.Sprintf("resource %q is not on %s", resource, rt.origin))
		return
	}
	ar := &store.AuthRequest{
		ID:            random(24),
		Route:         rt.host,
		ClientID:      client.ID,
		ClientName:    client.Name,
		RedirectURI:   redirectURI,
		State:         state,
		CodeChallenge: q.Get("code_challenge"),
		Resource:      resource,
		Scope:         q.Get("scope"),
		Upstream:      rt.upstreamFor(resource),
		Created:       rt.p.now(),
		Expires:       rt.p.now().Add(FlowTTL),
	}
	if rt.binding == config.BindingPerSession {
		ar.BindingSession = random(12)
	}
	if err := rt.p.st.put(r.Context(), nsRequests, secretKey(ar.ID), ar, ar.Expires); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	sess, err := rt.session(r)
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	rt.continueAuthorize(w, r, ar, sess)
}

// ownsResource reports whether a resource indicator names this route.
func (rt *route) ownsResource(resource string) bool {
	u, err := url.Parse(resource)
	return err == nil && u.Fragment == "" && strings.EqualFold(u.Scheme+"://"+u.Host, rt.origin)
}

// continueAuthorize moves a request to its next step: sign-in, consent, the
// remote authorization server, or the code.
func (rt *route) continueAuthorize(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, sess *store.Session) {
	if sess == nil {
		rt.startLogin(w, r, ar)
		return
	}
	c, err := getRecord[store.Consent](r.Context(), rt.p.st, nsConsents, rt.consentKey(sess.Subject, ar.ClientID))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if c == nil {
		rt.consentPage(w, r, ar, sess)
		return
	}
	rt.toUpstream(w, r, ar, sess)
}

func (rt *route) consentKey(subject, clientID string) string {
	return rt.host + "\x00" + subject + "\x00" + clientID
}

// session returns the signed-in session of the browser, or nil.
func (rt *route) session(r *http.Request) (*store.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	s, err := getRecord[store.Session](r.Context(), rt.p.st, nsSessions, secretKey(c.Value))
	if err != nil || s == nil {
		return nil, err
	}
	if !rt.p.now().Before(s.Expires) {
		return nil, nil
	}
	s.ID = c.Value
	return s, nil
}

// startLogin sends the browser to the identity provider. A cookie binds the
// sign-in to this browser, so a sign-in started elsewhere cannot be finished
// here. After sign-in the browser resumes ar, or goes to returnTo when ar is
// nil.
func (rt *route) startLogin(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, returnTo ...string) {
	state, binding := random(24), random(24)
	ls := &store.LoginState{Verifier: random(32), Nonce: random(16), Binding: secretKey(binding)}
	if ar != nil {
		ls.RequestID = ar.ID
	} else if len(returnTo) > 0 {
		ls.ReturnTo = returnTo[0]
	}
	authURL, err := rt.p.idp.AuthURL(r.Context(), rt.loginCallback, state, ls.Nonce, ls.Verifier)
	if err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"The identity provider %s could not be reached to sign you in.", rt.p.cfg.IdentityProvider.Issuer))
		return
	}
	if err := rt.p.st.put(r.Context(), nsLogins, secretKey(state), ls, rt.p.now().Add(FlowTTL)); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: binding, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(FlowTTL.Seconds())})
	http.Redirect(w, r, authURL, http.StatusFound)
}

// loginCallbackHandler finishes a sign-in and resumes the authorization.
func (rt *route) loginCallbackHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ls, err := takeRecord[store.LoginState](r.Context(), rt.p.st, nsLogins, secretKey(q.Get("state")))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if ls == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
			"This sign-in is unknown, already used or expired; start again from your MCP client."))
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(secretKey(c.Value)), []byte(ls.Binding)) != 1 {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
			"This sign-in was started in another browser; start again from your MCP client."))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	if e := q.Get("error"); e != "" {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusForbidden,
			"The identity provider did not sign you in: %s %s.", e, q.Get("error_description")))
		return
	}
	id, err := rt.p.idp.Finish(r.Context(), rt.loginCallback, q.Get("code"), ls.Verifier, ls.Nonce)
	if err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"Signing in at %s failed; try again, and if it keeps failing the proxy log has the cause.", rt.p.cfg.IdentityProvider.Issuer))
		return
	}
	sess, err := rt.newSession(r.Context(), w, id)
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	rt.log.Info("user signed in", slog.String("event", "login_succeeded"), slog.String("user", id.Subject),
		slog.String("request_id", apierror.RequestID(r.Context())))
	if ls.ReturnTo != "" {
		http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
		return
	}
	ar, err := getRecord[store.AuthRequest](r.Context(), rt.p.st, nsRequests, secretKey(ls.RequestID))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if ar == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"You are signed in, but the MCP client's authorization request expired; start again from your MCP client."))
		return
	}
	rt.continueAuthorize(w, r, ar, sess)
}

func (rt *route) newSession(ctx context.Context, w http.ResponseWriter, id *login.Identity) (*store.Session, error) {
	s := &store.Session{Subject: id.Subject, Email: id.Email, Name: id.Name, Expires: rt.p.now().Add(SessionTTL)}
	sid := random(32)
	if err := rt.p.st.put(ctx, nsSessions, secretKey(sid), s, s.Expires); err != nil {
		return nil, err
	}
	s.ID = sid
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
	return s, nil
}

// consent records the user's decision about an MCP client.
func (rt *route) consent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sess, err := rt.session(r)
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if sess == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusForbidden,
			"Your session ended before you decided; start again from your MCP client."))
		return
	}
	if err := r.ParseForm(); err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeInvalidRequest, http.StatusBadRequest, "The consent form could not be read."))
		return
	}
	reqID := r.PostForm.Get("request")
	if !rt.p.checkCSRF(sess.ID, reqID, r.PostForm.Get("csrf")) {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusForbidden,
			"The consent form did not come from this session; start again from your MCP client."))
		return
	}
	ar, err := getRecord[store.AuthRequest](r.Context(), rt.p.st, nsRequests, secretKey(reqID))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if ar == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"The MCP client's authorization request expired; start again from your MCP client."))
		return
	}
	if r.PostForm.Get("decision") != "approve" {
		_ = rt.p.st.del(r.Context(), nsRequests, secretKey(ar.ID))
		rt.p.metrics.AuthorizationFlow(rt.host, metrics.AuthDenied, rt.p.now().Sub(ar.Created))
		rt.redirectError(w, r, ar.RedirectURI, ar.State, "access_denied", "the user denied access")
		return
	}
	if err := rt.p.st.put(r.Context(), nsConsents, rt.consentKey(sess.Subject, ar.ClientID), &store.Consent{Time: rt.p.now()}, rt.p.now().Add(RefreshTokenTTL)); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	rt.toUpstream(w, r, ar, sess)
}

// toUpstream makes sure the user has an upstream token for the request's
// remote endpoint, sending the browser to the remote authorization server
// when there is none (or when the remote server asked for more scope), then
// issues the code.
func (rt *route) toUpstream(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, sess *store.Session) {
	key := rt.bindingKey(sess.Subject, ar.BindingSession, ar.Upstream)
	existing, err := getRecord[store.UpstreamToken](r.Context(), rt.p.st, nsUpstream, key)
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if existing != nil && !needsMoreScope(existing) {
		rt.issueCode(w, r, ar, sess.Subject, key)
		return
	}
	grant, noAuth, e := rt.planUpstream(r, ar, sess.Subject)
	if e != nil {
		rt.p.metrics.AuthorizationFlow(rt.host, metrics.AuthFailed, rt.p.now().Sub(ar.Created))
		rt.errorPage(w, r, e)
		return
	}
	if noAuth {
		rt.issueCode(w, r, ar, sess.Subject, "")
		return
	}
	if rt.binding == config.BindingServiceAccount {
		sa := rt.cfg.Server().ServiceAccount
		if sa.ClientCredentials {
			if err := rt.clientCredentials(r.Context(), grant, key, sess.Subject); err != nil {
				rt.p.metrics.AuthorizationFlow(rt.host, metrics.AuthFailed, rt.p.now().Sub(ar.Created))
				rt.errorPage(w, r, err)
				return
			}
			rt.issueCode(w, r, ar, sess.Subject, key)
			return
		}
		if sess.Subject != sa.Admin {
			rt.authFailed(r, sess.Subject, apierror.CodeServiceAccountMissing, grant.Issuer, nil)
			rt.errorPage(w, r, apierror.New(apierror.CodeServiceAccountMissing, http.StatusServiceUnavailable,
				"This route uses one shared connection to %s, which its administrator %s has not set up yet. Ask them to connect once.", ar.Upstream, sa.Admin))
			return
		}
	}
	if existing != nil {
		grant.Scopes = unionScopes(grant.Scopes, existing.Scopes, existing.NeedScopes)
	}
	pend := &store.PendingUpstream{
		State:       random(32),
		Route:       rt.host,
		Subject:     sess.Subject,
		Client:      ar.ClientID,
		RequestID:   ar.ID,
		BindingKey:  key,
		Upstream:    ar.Upstream,
		Verifier:    random(48),
		Grant:       *grant,
		RedirectURL: rt.upstreamCallback,
		Expires:     rt.p.now().Add(FlowTTL),
	}
	if err := rt.p.st.put(r.Context(), nsPending, secretKey(pend.State), pend, pend.Expires); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	http.Redirect(w, r, pend.Grant.AuthCodeURL(pend.RedirectURL, pend.State, pend.Verifier), http.StatusFound)
}

// needsMoreScope reports whether the remote server asked for scopes the
// token does not have.
func needsMoreScope(t *store.UpstreamToken) bool {
	for _, s := range t.NeedScopes {
		if !slices.Contains(t.Scopes, s) {
			return true
		}
	}
	return false
}

func unionScopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// planUpstream decides how the proxy authorizes to the remote endpoint:
// on one code path, static endpoints, or discovery followed by the client
// identity in order: the pre-registered client, the route's own Client ID
// Metadata Document, dynamic registration (when allowed), else an error
// that names what is missing.
func (rt *route) planUpstream(r *http.Request, ar *store.AuthRequest, subject string) (*upstream.Grant, bool, *apierror.Error) {
	srv := rt.cfg.Server()
	pre := srv.UpstreamOAuth2
	var g upstream.Grant
	if pre != nil && pre.Endpoint != nil {
		g = upstream.Grant{AuthURL: pre.Endpoint.AuthURL, TokenURL: pre.Endpoint.TokenURL, ClientID: pre.ClientID,
			Resource: ar.Upstream, Scopes: pre.Scopes, Method: "static"}
		return &g, false, nil
	}
	d, hit, err := rt.p.discovery.Discover(r.Context(), ar.Upstream, srv.AuthorizationServerURL)
	if err != nil {
		step := ""
		var de *upstream.Error
		if errors.As(err, &de) {
			step = de.Step
		}
		rt.log.Warn("discovery failed", slog.String("event", "discovery_failed"), slog.String("upstream", ar.Upstream),
			slog.String("step", step), slog.String("error", err.Error()), slog.String("request_id", apierror.RequestID(r.Context())))
		return nil, false, apierror.Wrap(err, apierror.CodeDiscoveryFailed, http.StatusBadGateway, "%s", err.Error())
	}
	cache := "miss"
	if hit {
		cache = "hit"
		rt.p.metrics.DiscoveryCache(metrics.DiscoveryHit)
	} else {
		rt.p.metrics.DiscoveryCache(metrics.DiscoveryMiss)
	}
	rt.log.Info("discovery", slog.String("event", "discovery_completed"), slog.String("upstream", ar.Upstream),
		slog.String("cache", cache), slog.String("request_id", apierror.RequestID(r.Context())))
	if d.NoAuth {
		return nil, true, nil
	}
	g = upstream.Grant{
		Issuer:        d.Issuer,
		AuthURL:       d.AS.AuthorizationEndpoint,
		TokenURL:      d.AS.TokenEndpoint,
		RevocationURL: d.AS.RevocationEndpoint,
		Resource:      d.Resource,
		Scopes:        d.Scopes,
		IssRequired:   d.AS.AuthorizationResponseIssParameterSupported,
	}
	switch {
	case pre != nil:
		g.ClientID, g.Method = pre.ClientID, "preregistered"
		g.SecretInBody = pre.ClientSecret != "" && !slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_basic") &&
			slices.Contains(d.AS.TokenEndpointAuthMethodsSupported, "client_secret_post")
	case d.SupportsCIMD():
		g.ClientID, g.Method = rt.cimdURL, "cimd"
	case srv.DynamicClientRegistration && d.AS.RegistrationEndpoint != "":
		reg, err := rt.p.registration(r.Context(), rt, d)
		if err != nil {
			rt.p.discovery.Invalidate(ar.Upstream)
			rt.authFailed(r, subject, apierror.CodeRegistrationUnavailable, d.Issuer, err)
			return nil, false, apierror.Wrap(err, apierror.CodeRegistrationUnavailable, http.StatusBadGateway,
				"The remote authorization server %s refused the proxy's dynamic registration: %v", d.Issuer, err)
		}
		g.ClientID, g.Method = reg.ClientID, "dcr"
		g.SecretInBody = reg.SecretInBody
	default:
		rt.p.discovery.Invalidate(ar.Upstream)
		e := apierror.New(apierror.CodeRegistrationUnavailable, http.StatusBadGateway,
			"The remote authorization server %s does not accept Client ID Metadata Documents, and this route allows no other way to register. Register the proxy there and set mcp.server.upstream_oauth2.client_id, or set mcp.server.dynamic_client_registration: true if it offers dynamic registration.", d.Issuer)
		rt.authFailed(r, subject, e.Code, d.Issuer, nil)
		return nil, false, e
	}
	switch {
	case pre != nil && len(pre.Scopes) > 0:
		g.Scopes = pre.Scopes
	case srv.PassScopes && ar.Scope != "":
		g.Scopes = strings.Fields(ar.Scope)
	}
	return &g, false, nil
}

// authFailed logs a failed upstream authorization.
func (rt *route) authFailed(r *http.Request, subject string, code apierror.Code, issuer string, err error) {
	attrs := []any{slog.String("event", "authorization_failed"), slog.String("user", subject),
		slog.String("error_code", string(code)), slog.String("issuer", issuer),
		slog.String("request_id", apierror.RequestID(r.Context()))}
	if err != nil {
		attrs = append(attrs, slog.String("cause", err.Error()))
	}
	rt.log.Warn("upstream authorization failed", attrs...)
}

// clientSecret returns the secret of the client a grant uses: from the
// configuration for a registered client, from the registration for a
// dynamically registered one, none for a Client ID Metadata Document.
func (rt *route) clientSecret(g *upstream.Grant) string {
	switch g.Method {
	case "preregistered", "static":
		if pre := rt.cfg.Server().UpstreamOAuth2; pre != nil && pre.ClientID == g.ClientID {
			return pre.ClientSecret
		}
	case "dcr":
		reg, err := getRecord[store.Registration](context.Background(), rt.p.st, nsRegistrations, registrationKey(rt, g.Issuer))
		if err == nil && reg != nil && reg.ClientID == g.ClientID {
			return reg.Secret
		}
	}
	return ""
}

// upstreamCallbackHandler is where the remote authorization server sends
// the browser back. It checks state (single use, unexpired), that the same
// user is signed in, and iss (RFC 9207) before it redeems the code.
func (rt *route) upstreamCallbackHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// The state is read first and consumed only once the answer is known to
	// belong to this browser's user: a link opened by someone else must not
	// destroy the authorization of the user it belongs to.
	pend, err := getRecord[store.PendingUpstream](r.Context(), rt.p.st, nsPending, secretKey(q.Get("state")))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if pend == nil || !rt.p.now().Before(pend.Expires) {
		rt.errorPage(w, r, apierror.New(apierror.CodeStateInvalid, http.StatusBadRequest,
			"This answer from the remote authorization server has an unknown, already used or expired state, so the proxy did not use it. Start again from your MCP client."))
		return
	}
	sess, err := rt.session(r)
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if sess == nil || sess.Subject != pend.Subject {
		rt.errorPage(w, r, apierror.New(apierror.CodeWrongUser, http.StatusForbidden,
			"This answer from the remote authorization server belongs to an authorization started by another user or in another browser, so the proxy did not use it. Start again from your MCP client."))
		return
	}
	if taken, err := takeRecord[store.PendingUpstream](r.Context(), rt.p.st, nsPending, secretKey(pend.State)); err != nil || taken == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeStateInvalid, http.StatusBadRequest,
			"This answer from the remote authorization server has an unknown, already used or expired state, so the proxy did not use it. Start again from your MCP client."))
		return
	}
	fail := func(err error, code apierror.Code, status int, format string, args ...any) {
		rt.p.discovery.Invalidate(pend.Upstream)
		rt.authFailed(r, pend.Subject, code, pend.Grant.Issuer, err)
		rt.errorPage(w, r, apierror.Wrap(err, code, status, format, args...))
	}
	iss := q.Get("iss")
	if pend.Grant.Issuer != "" && (pend.Grant.IssRequired || iss != "") && iss != pend.Grant.Issuer {
		fail(nil, apierror.CodeIssuerMismatch, http.StatusBadRequest,
			"The answer names issuer %q, but the proxy sent the authorization to %s, so it did not use it (RFC 9207). Start again from your MCP client.", iss, pend.Grant.Issuer)
		return
	}
	if e := q.Get("error"); e != "" {
		fail(nil, apierror.CodeUpstreamAuthorization, http.StatusForbidden,
			"The remote authorization server %s did not grant access: %s %s", pend.Grant.Issuer, e, q.Get("error_description"))
		return
	}
	tok, err := pend.Grant.Exchange(r.Context(), rt.p.hc, pend.RedirectURL, q.Get("code"), pend.Verifier, rt.clientSecret(&pend.Grant))
	if err != nil {
		if upstream.IsRefused(err) {
			fail(err, apierror.CodeUpstreamAuthorization, http.StatusBadGateway,
				"The remote authorization server %s refused to exchange the code: %v", pend.Grant.Issuer, err)
		} else {
			fail(err, apierror.CodeASUnreachable, http.StatusBadGateway,
				"The remote authorization server %s could not be reached to exchange the code. Try again shortly.", pend.Grant.Issuer)
		}
		return
	}
	ut := &store.UpstreamToken{
		Key:          pend.BindingKey,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       tok.Expiry,
		Grant:        pend.Grant,
		Subject:      pend.Subject,
		Client:       pend.Client,
		Acquired:     rt.p.now(),
		Scopes:       grantedScopes(tok, pend.Grant.Scopes),
	}
	if prev, _ := getRecord[store.UpstreamToken](r.Context(), rt.p.st, nsUpstream, pend.BindingKey); prev != nil {
		ut.StepUps = prev.StepUps // a step-up keeps counting until an answer succeeds
	}
	if err := rt.p.st.put(r.Context(), nsUpstream, ut.Key, ut, time.Time{}); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	rt.p.metrics.Registration(metrics.RegistrationMethod(registrationMetric(pend.Grant.Method)))
	rt.log.Info("upstream token acquired", slog.String("event", "token_acquired"), slog.String("user", pend.Subject),
		slog.String("binding", rt.binding), slog.String("issuer", pend.Grant.Issuer),
		slog.String("request_id", apierror.RequestID(r.Context())))
	rt.audit(r.Context(), pend.Subject, ut.Key, "token_acquired", "allowed", nil)
	ar, err := getRecord[store.AuthRequest](r.Context(), rt.p.st, nsRequests, secretKey(pend.RequestID))
	if err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	if ar == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"The remote server is connected, but the MCP client's authorization request expired; start again from your MCP client."))
		return
	}
	rt.issueCode(w, r, ar, pend.Subject, pend.BindingKey)
}

// issueCode ends a downstream authorization: a code for the MCP client, with
// iss (RFC 9207).
func (rt *route) issueCode(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, subject, bindingKey string) {
	code := random(32)
	c := &store.Code{Request: *ar, Subject: subject, BindingKey: bindingKey, Expires: rt.p.now().Add(CodeTTL)}
	if err := rt.p.st.put(r.Context(), nsCodes, secretKey(code), c, c.Expires); err != nil {
		rt.errorPage(w, r, storageError(err))
		return
	}
	_ = rt.p.st.del(r.Context(), nsRequests, secretKey(ar.ID))
	rt.p.metrics.AuthorizationFlow(rt.host, metrics.AuthGranted, rt.p.now().Sub(ar.Created))
	u, _ := url.Parse(ar.RedirectURI)
	v := u.Query()
	v.Set("code", code)
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	v.Set("iss", rt.issuer)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectError returns an OAuth error to the MCP client's redirect URI.
func (rt *route) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest, "%s", desc))
		return
	}
	v := u.Query()
	v.Set("error", code)
	v.Set("error_description", desc)
	if state != "" {
		v.Set("state", state)
	}
	v.Set("iss", rt.issuer)
	u.RawQuery = v.Encode()
	rt.log.Info("authorization refused", slog.String("event", "authorization_refused"), slog.String("error_code", code),
		slog.String("description", desc), slog.String("request_id", apierror.RequestID(r.Context())))
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// refreshLease bounds how long one replica may hold a binding key's refresh
// lock; a refresh takes one token request.
const refreshLease = 30 * time.Second

// upstreamToken returns the upstream token under key, refreshed when it
// expires within RefreshSkew. One refresh runs at a time per key: callers
// in this process share its result, and a lease in the store keeps other
// replicas out. A refused refresh drops the token (nil, nil: the user must
// consent again); an unreachable authorization server keeps it and answers
// 502.
func (p *Proxy) upstreamToken(ctx context.Context, rt *route, key string) (*store.UpstreamToken, error) {
	t, err := hotRecord[store.UpstreamToken](ctx, p.st, nsUpstream, key)
	if err != nil {
		return nil, storageError(err)
	}
	if t == nil {
		p.metrics.TokenCache(rt.host, metrics.CacheMiss)
		return nil, nil
	}
	if t.Expiry.IsZero() || p.now().Add(RefreshSkew).Before(t.Expiry) {
		p.metrics.TokenCache(rt.host, metrics.CacheHit)
		return t, nil
	}
	p.metrics.TokenCache(rt.host, metrics.CacheRefresh)
	v, err, _ := p.refreshes.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		unlock, err := p.st.b.Lock(ctx, "refresh:"+secretKey(key), refreshLease)
		if err != nil {
			return nil, storageError(err)
		}
		defer unlock()
		// Another caller or replica may have refreshed while this one
		// waited for the lease: a token other than the one read above is
		// that refresh's result, and is used as it is.
		cur, err := getRecord[store.UpstreamToken](ctx, p.st, nsUpstream, key)
		if err != nil {
			return nil, storageError(err)
		}
		if cur == nil || cur.AccessToken != t.AccessToken || p.now().Add(RefreshSkew).Before(cur.Expiry) {
			return cur, nil
		}
		if rt.binding == config.BindingServiceAccount && rt.cfg.Server().ServiceAccount.ClientCredentials {
			if e := rt.clientCredentials(ctx, &cur.Grant, key, cur.Subject); e != nil {
				return nil, e
			}
			return getRecord[store.UpstreamToken](ctx, p.st, nsUpstream, key)
		}
		if cur.RefreshToken == "" {
			if p.now().Before(cur.Expiry) {
				return cur, nil // no way to renew; use it while it lasts
			}
			return (*store.UpstreamToken)(nil), p.st.del(ctx, nsUpstream, key)
		}
		tok, err := cur.Grant.Refresh(ctx, p.hc, cur.RefreshToken, rt.clientSecret(&cur.Grant), p.now())
		if err != nil {
			if upstream.IsRefused(err) {
				if err := p.st.del(ctx, nsUpstream, key); err != nil {
					return nil, storageError(err)
				}
				p.metrics.Refresh(rt.host, metrics.RefreshRefused)
				rt.log.Info("the remote authorization server refused the refresh; the user must consent again",
					slog.String("event", "token_refresh_refused"), slog.String("user", cur.Subject),
					slog.String("binding", rt.binding), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
				rt.audit(ctx, cur.Subject, key, "token_refresh_refused", "denied", nil)
				return (*store.UpstreamToken)(nil), nil
			}
			p.metrics.Refresh(rt.host, metrics.RefreshFailed)
			rt.log.Warn("token refresh failed", slog.String("event", "token_refresh_failed"), slog.String("user", cur.Subject),
				slog.String("binding", rt.binding), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
			return nil, apierror.Wrap(err, apierror.CodeASUnreachable, http.StatusBadGateway,
				"The remote authorization server %s could not be reached to refresh your token. The token is kept; try again shortly.", asName(&cur.Grant))
		}
		next := *cur
		next.AccessToken, next.RefreshToken, next.Expiry = tok.AccessToken, tok.RefreshToken, tok.Expiry
		next.Scopes = grantedScopes(tok, cur.Scopes)
		if tok.TokenType != "" {
			next.TokenType = tok.TokenType
		}
		if err := p.st.put(ctx, nsUpstream, key, &next, time.Time{}); err != nil {
			return nil, storageError(err)
		}
		p.metrics.Refresh(rt.host, metrics.RefreshSuccess)
		rt.log.Info("upstream token refreshed", slog.String("event", "token_refreshed"), slog.String("user", cur.Subject),
			slog.String("binding", rt.binding), slog.String("request_id", apierror.RequestID(ctx)))
		rt.audit(ctx, cur.Subject, key, "token_refreshed", "allowed", nil)
		return &next, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.UpstreamToken), nil
}

// clientCredentials gets a service account route's shared token with the
// client credentials grant (RFC 6749 §4.4) and stores it under key.
func (rt *route) clientCredentials(ctx context.Context, g *upstream.Grant, key, actor string) *apierror.Error {
	tok, err := g.ClientCredentials(ctx, rt.p.hc, rt.clientSecret(g), rt.p.now())
	if err != nil {
		code := apierror.CodeASUnreachable
		msg := "The remote authorization server %s could not be reached for the route's shared token; try again shortly."
		if upstream.IsRefused(err) {
			code, msg = apierror.CodeUpstreamAuthorization, "The remote authorization server %s refused the route's client credentials."
		}
		return apierror.Wrap(err, code, http.StatusBadGateway, msg, asName(g))
	}
	ut := &store.UpstreamToken{Key: key, AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry,
		Grant: *g, Subject: actor, Acquired: rt.p.now(), Scopes: grantedScopes(tok, g.Scopes)}
	if err := rt.p.st.put(ctx, nsUpstream, key, ut, time.Time{}); err != nil {
		return storageError(err)
	}
	rt.log.Info("upstream token acquired", slog.String("event", "token_acquired"), slog.String("user", actor),
		slog.String("binding", rt.binding), slog.String("issuer", g.Issuer), slog.String("request_id", apierror.RequestID(ctx)))
	rt.audit(ctx, actor, key, "token_acquired", "allowed", map[string]string{"grant": "client_credentials"})
	return nil
}

// registrationMetric names a grant's registration method for the metric.
func registrationMetric(method string) string {
	if method == "static" {
		return "preregistered"
	}
	return method
}

// grantedScopes returns the scope of a token response, or the scopes asked
// for when the response names none (RFC 6749 §5.1).
func grantedScopes(tok *oauth2.Token, asked []string) []string {
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		return strings.Fields(s)
	}
	return asked
}

// asName names the authorization server of a grant in messages: its
// issuer, or the origin of its token endpoint for static endpoints.
func asName(g *upstream.Grant) string {
	if g.Issuer != "" {
		return g.Issuer
	}
	if u, err := url.Parse(g.TokenURL); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return g.TokenURL
}

// errorPage shows a failure in the browser, with the request id.
func (rt *route) errorPage(w http.ResponseWriter, r *http.Request, e *apierror.Error) {
	rt.p.metrics.Error(rt.host, e.Code)
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("event", "request_failed"), slog.String("error_code", string(e.Code)),
		slog.Int("status", e.Status), slog.String("request_id", apierror.RequestID(r.Context())), slog.String("path", r.URL.Path)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	rt.log.LogAttrs(r.Context(), level, e.Message, attrs...)
	renderPage(w, e.Status, errorTemplate, map[string]any{
		"Title": "Authorization failed", "Code": e.Code, "Message": e.Message,
		"RequestID": apierror.RequestID(r.Context()), "Host": rt.host,
	})
}

func (rt *route) consentPage(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, sess *store.Session) {
	client := &clientid.Client{ID: ar.ClientID}
	scopes := strings.Fields(ar.Scope)
	user := sess.Email
	if user == "" {
		user = sess.Subject
	}
	renderPage(w, http.StatusOK, consentTemplate, map[string]any{
		"Title": "Allow " + ar.ClientName + "?", "ClientName": ar.ClientName, "ClientHost": client.Host(),
		"ClientID": ar.ClientID, "RedirectURI": ar.RedirectURI, "Host": rt.host, "Remote": rt.to.Host,
		"Scopes": scopes, "User": user, "Request": ar.ID, "CSRF": rt.p.csrfToken(sess.ID, ar.ID),
		"Action": pathConsent,
	})
}
