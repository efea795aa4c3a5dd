package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// loginState is a sign-in at the identity provider in flight.
type loginState struct {
	requestID string
	verifier  string
	nonce     string
	binding   string // hash of the browser's login cookie
}

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
			"the authorization request has no client_id; the MCP client must send one"))
		return
	}
	client, err := rt.p.clients.Resolve(r.Context(), clientID)
	if err != nil {
		var ce *clientid.Error
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = "the MCP client cannot be used: " + ce.Error()
		}
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeInvalidRequest, http.StatusBadRequest, "%s", msg))
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"redirect_uri %q is not one of the redirect_uris the MCP client %s publishes", redirectURI, client.ID))
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
		Expires:       rt.p.now().Add(FlowTTL),
	}
	rt.p.requests.Put(ar.ID, ar, ar.Expires)
	rt.continueAuthorize(w, r, ar, rt.session(r))
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
	if _, ok := rt.p.consents.Get(rt.consentKey(sess.Subject, ar.ClientID), rt.p.now()); !ok {
		rt.consentPage(w, r, ar, sess)
		return
	}
	rt.toUpstream(w, r, ar, sess)
}

func (rt *route) consentKey(subject, clientID string) string {
	return rt.host + "\x00" + subject + "\x00" + clientID
}

// session returns the signed-in session of the browser, or nil.
func (rt *route) session(r *http.Request) *store.Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s, ok := rt.p.sessions.Get(c.Value, rt.p.now())
	if !ok {
		return nil
	}
	return s
}

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// startLogin sends the browser to the identity provider. A cookie binds the
// sign-in to this browser, so a sign-in started elsewhere cannot be finished
// here.
func (rt *route) startLogin(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest) {
	state, binding := random(24), random(24)
	ls := &loginState{requestID: ar.ID, verifier: random(32), nonce: random(16), binding: hashString(binding)}
	authURL, err := rt.p.idp.AuthURL(r.Context(), rt.loginCallback, state, ls.nonce, ls.verifier)
	if err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"the identity provider %s could not be reached to sign you in", rt.p.cfg.IdentityProvider.Issuer))
		return
	}
	rt.p.logins.Put(state, ls, rt.p.now().Add(FlowTTL))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: binding, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(FlowTTL.Seconds())})
	http.Redirect(w, r, authURL, http.StatusFound)
}

// loginCallbackHandler finishes a sign-in and resumes the authorization.
func (rt *route) loginCallbackHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ls, ok := rt.p.logins.Take(q.Get("state"), rt.p.now())
	if !ok {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
			"this sign-in is unknown, already used or expired; start again from your MCP client"))
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(hashString(c.Value)), []byte(ls.binding)) != 1 {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
			"this sign-in was started in another browser; start again from your MCP client"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	if e := q.Get("error"); e != "" {
		rt.errorPage(w, r, apierror.New(apierror.CodeLoginFailed, http.StatusForbidden,
			"the identity provider did not sign you in: %s %s", e, q.Get("error_description")))
		return
	}
	id, err := rt.p.idp.Finish(r.Context(), rt.loginCallback, q.Get("code"), ls.verifier, ls.nonce)
	if err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"signing in at %s failed; try again, and if it keeps failing the proxy log has the cause", rt.p.cfg.IdentityProvider.Issuer))
		return
	}
	sess := rt.newSession(w, id)
	rt.log.Info("user signed in", slog.String("event", "login_succeeded"), slog.String("user", id.Subject),
		slog.String("request_id", apierror.RequestID(r.Context())))
	ar, ok := rt.p.requests.Get(ls.requestID, rt.p.now())
	if !ok {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"you are signed in, but the MCP client's authorization request expired; start again from your MCP client"))
		return
	}
	rt.continueAuthorize(w, r, ar, sess)
}

func (rt *route) newSession(w http.ResponseWriter, id *login.Identity) *store.Session {
	s := &store.Session{ID: random(32), Subject: id.Subject, Email: id.Email, Name: id.Name, Expires: rt.p.now().Add(SessionTTL)}
	rt.p.sessions.Put(s.ID, s, s.Expires)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.ID, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
	return s
}

// consent records the user's decision about an MCP client.
func (rt *route) consent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sess := rt.session(r)
	if sess == nil {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusForbidden,
			"your session ended before you decided; start again from your MCP client"))
		return
	}
	if err := r.ParseForm(); err != nil {
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeInvalidRequest, http.StatusBadRequest, "the consent form could not be read"))
		return
	}
	reqID := r.PostForm.Get("request")
	if !rt.p.checkCSRF(sess.ID, reqID, r.PostForm.Get("csrf")) {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusForbidden,
			"the consent form did not come from this session; start again from your MCP client"))
		return
	}
	ar, ok := rt.p.requests.Get(reqID, rt.p.now())
	if !ok {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"the MCP client's authorization request expired; start again from your MCP client"))
		return
	}
	if r.PostForm.Get("decision") != "approve" {
		rt.p.requests.Delete(ar.ID)
		rt.redirectError(w, r, ar.RedirectURI, ar.State, "access_denied", "the user denied access")
		return
	}
	rt.p.consents.Put(rt.consentKey(sess.Subject, ar.ClientID), struct{}{}, rt.p.now().Add(RefreshTokenTTL))
	rt.toUpstream(w, r, ar, sess)
}

// toUpstream makes sure the user has an upstream token for the request's
// remote endpoint, sending the browser to the remote authorization server
// when there is none, then issues the code.
func (rt *route) toUpstream(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, sess *store.Session) {
	key := rt.bindingKey(sess.Subject, ar.Upstream)
	if tok, err := rt.p.tokens.Get(r.Context(), key); err == nil && tok != nil {
		rt.issueCode(w, r, ar, sess.Subject, key)
		return
	}
	d, hit, err := rt.p.discovery.Discover(r.Context(), ar.Upstream)
	if err != nil {
		rt.log.Warn("discovery failed", slog.String("event", "discovery_failed"), slog.String("upstream", ar.Upstream),
			slog.String("error", err.Error()), slog.String("request_id", apierror.RequestID(r.Context())))
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeDiscoveryFailed, http.StatusBadGateway,
			"the proxy could not learn how to authorize to the remote MCP server: %v", err))
		return
	}
	rt.log.Debug("discovery", slog.String("event", "discovery_done"), slog.Bool("cache_hit", hit), slog.String("upstream", ar.Upstream))
	if d.NoAuth {
		rt.issueCode(w, r, ar, sess.Subject, "")
		return
	}
	if !d.SupportsCIMD() {
		rt.p.discovery.Invalidate(ar.Upstream)
		rt.errorPage(w, r, apierror.New(apierror.CodeUpstreamAuthorization, http.StatusBadGateway,
			"the remote authorization server %s does not support Client ID Metadata Documents, and the route configures no other way to register", d.Issuer))
		return
	}
	pend := &store.PendingUpstream{
		State:      random(32),
		Route:      rt.host,
		Subject:    sess.Subject,
		RequestID:  ar.ID,
		BindingKey: key,
		Upstream:   ar.Upstream,
		Verifier:   random(48),
		Grant: upstream.Grant{
			Issuer:      d.Issuer,
			AuthURL:     d.AS.AuthorizationEndpoint,
			TokenURL:    d.AS.TokenEndpoint,
			ClientID:    rt.cimdURL,
			Resource:    d.Resource,
			Scopes:      d.Scopes,
			IssRequired: d.AS.AuthorizationResponseIssParameterSupported,
		},
		RedirectURL: rt.upstreamCallback,
		Expires:     rt.p.now().Add(FlowTTL),
	}
	rt.p.pending.Put(pend.State, pend, pend.Expires)
	http.Redirect(w, r, pend.Grant.AuthCodeURL(pend.RedirectURL, pend.State, pend.Verifier), http.StatusFound)
}

// upstreamCallbackHandler is where the remote authorization server sends
// the browser back. It checks state (single use, unexpired), that the same
// user is signed in, and iss (RFC 9207) before it redeems the code.
func (rt *route) upstreamCallbackHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pend, ok := rt.p.pending.Take(q.Get("state"), rt.p.now())
	if !ok {
		rt.errorPage(w, r, apierror.New(apierror.CodeUpstreamAuthorization, http.StatusBadRequest,
			"this answer from the remote authorization server has an unknown, used or expired state; start again from your MCP client"))
		return
	}
	sess := rt.session(r)
	if sess == nil || sess.Subject != pend.Subject {
		rt.errorPage(w, r, apierror.New(apierror.CodeUpstreamAuthorization, http.StatusForbidden,
			"this consent was started by another user or in another browser; start again from your MCP client"))
		return
	}
	fail := func(err error, status int, format string, args ...any) {
		rt.p.discovery.Invalidate(pend.Upstream)
		rt.log.Warn("upstream authorization failed", slog.String("event", "authorization_failed"),
			slog.String("user", pend.Subject), slog.String("issuer", pend.Grant.Issuer),
			slog.String("request_id", apierror.RequestID(r.Context())), slog.Any("error", err))
		rt.errorPage(w, r, apierror.Wrap(err, apierror.CodeUpstreamAuthorization, status, format, args...))
	}
	iss := q.Get("iss")
	if (pend.Grant.IssRequired || iss != "") && iss != pend.Grant.Issuer {
		fail(nil, http.StatusBadRequest, "the answer names issuer %q, but the authorization was sent to %q; it was not accepted", iss, pend.Grant.Issuer)
		return
	}
	if e := q.Get("error"); e != "" {
		fail(nil, http.StatusForbidden, "the remote authorization server %s did not grant access: %s %s", pend.Grant.Issuer, e, q.Get("error_description"))
		return
	}
	tok, err := pend.Grant.Exchange(r.Context(), rt.p.hc, pend.RedirectURL, q.Get("code"), pend.Verifier)
	if err != nil {
		fail(err, http.StatusBadGateway, "the remote authorization server %s did not exchange the code: %v", pend.Grant.Issuer, err)
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
		Acquired:     rt.p.now(),
	}
	if err := rt.p.tokens.Put(r.Context(), ut); err != nil {
		fail(err, http.StatusServiceUnavailable, "the token could not be stored")
		return
	}
	rt.log.Info("upstream token acquired", slog.String("event", "token_acquired"), slog.String("user", pend.Subject),
		slog.String("binding", bindingPerUser), slog.String("issuer", pend.Grant.Issuer),
		slog.String("request_id", apierror.RequestID(r.Context())))
	ar, ok := rt.p.requests.Get(pend.RequestID, rt.p.now())
	if !ok {
		rt.errorPage(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"the remote server is connected, but the MCP client's authorization request expired; start again from your MCP client"))
		return
	}
	rt.issueCode(w, r, ar, pend.Subject, pend.BindingKey)
}

// issueCode ends a downstream authorization: a code for the MCP client, with
// iss (RFC 9207).
func (rt *route) issueCode(w http.ResponseWriter, r *http.Request, ar *store.AuthRequest, subject, bindingKey string) {
	rt.p.requests.Delete(ar.ID)
	code := random(32)
	c := &store.Code{Request: *ar, Subject: subject, BindingKey: bindingKey, Expires: rt.p.now().Add(CodeTTL)}
	rt.p.codes.Put(store.HashOf(code), c, c.Expires)
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

// upstreamToken returns the upstream token under key, refreshed when it
// expires within RefreshSkew. One refresh runs at a time per key; callers
// that arrive meanwhile share its result. A refused refresh drops the
// token (nil, nil: the user must consent again); an unreachable
// authorization server keeps it and answers 502.
func (p *Proxy) upstreamToken(ctx context.Context, rt *route, key string) (*store.UpstreamToken, error) {
	t, err := p.tokens.Get(ctx, key)
	if err != nil {
		return nil, apierror.Wrap(err, apierror.CodeInternal, http.StatusServiceUnavailable, "the token store could not be read")
	}
	if t == nil || t.Expiry.IsZero() || p.now().Add(RefreshSkew).Before(t.Expiry) {
		return t, nil
	}
	v, err, _ := p.refreshes.Do(key, func() (any, error) {
		// Another caller may have refreshed while this one waited.
		cur, err := p.tokens.Get(context.WithoutCancel(ctx), key)
		if err != nil || cur == nil {
			return cur, err
		}
		if p.now().Add(RefreshSkew).Before(cur.Expiry) {
			return cur, nil
		}
		if cur.RefreshToken == "" {
			if p.now().Before(cur.Expiry) {
				return cur, nil // no way to renew; use it while it lasts
			}
			_ = p.tokens.Delete(ctx, key)
			return (*store.UpstreamToken)(nil), nil
		}
		tok, err := cur.Grant.Refresh(context.WithoutCancel(ctx), p.hc, cur.RefreshToken, p.now())
		if err != nil {
			if upstream.IsRefused(err) {
				_ = p.tokens.Delete(ctx, key)
				rt.log.Info("the remote authorization server refused the refresh; the user must consent again",
					slog.String("event", "token_refresh_refused"), slog.String("user", cur.Subject),
					slog.String("binding", bindingPerUser), slog.Any("error", err))
				return (*store.UpstreamToken)(nil), nil
			}
			return nil, apierror.Wrap(err, apierror.CodeUpstreamAuthorization, http.StatusBadGateway,
				"the remote authorization server %s could not be reached to refresh your token; try again shortly", cur.Grant.Issuer)
		}
		next := *cur
		next.AccessToken, next.RefreshToken, next.Expiry = tok.AccessToken, tok.RefreshToken, tok.Expiry
		if tok.TokenType != "" {
			next.TokenType = tok.TokenType
		}
		if err := p.tokens.Put(ctx, &next); err != nil {
			return nil, apierror.Wrap(err, apierror.CodeInternal, http.StatusServiceUnavailable, "the refreshed token could not be stored")
		}
		rt.log.Info("upstream token refreshed", slog.String("event", "token_refreshed"), slog.String("user", cur.Subject),
			slog.String("binding", bindingPerUser))
		return &next, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.UpstreamToken), nil
}

// errorPage shows a failure in the browser, with the request id.
func (rt *route) errorPage(w http.ResponseWriter, r *http.Request, e *apierror.Error) {
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
