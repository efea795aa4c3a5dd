package mockas

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// authorizeParams are the authorization request parameters an authorize
// event records.
var authorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge",
	"code_challenge_method", "resource", "nonce", "prompt", "response_mode",
}

// resolveClient finds a client: a pre-registered id, else, when Client ID
// Metadata Documents are on and the id is an https URL, its document.
func (s *Server) resolveClient(ctx context.Context, id string) (*clientInfo, error) {
	if c := s.lookupClient(id); c != nil {
		return c, nil
	}
	lower := strings.ToLower(id)
	cimd := s.Settings().CIMD
	switch {
	case strings.HasPrefix(lower, "https://") && cimd:
		return s.cimdClient(ctx, id)
	case strings.HasPrefix(lower, "https://"):
		return nil, fmt.Errorf("client_id %q is not registered, and this server does not accept Client ID Metadata Documents (client_id_metadata_document_supported is off)", id)
	case strings.HasPrefix(lower, "http://") && cimd:
		return nil, fmt.Errorf("client_id %q is not registered, and a client metadata document URL must use https", id)
	}
	return nil, fmt.Errorf("client_id %q is not registered with this server", id)
}

// redirectAllowed reports whether requested is one of the client's
// registered redirect URIs.
func (s *Server) redirectAllowed(c *clientInfo, requested string) bool {
	for _, r := range c.RedirectURIs {
		if s.redirectMatch(r, requested) {
			return true
		}
	}
	return false
}

// handleAuthorize is the authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1
// §4.1.1) with PKCE S256 only (RFC 7636), resource indicators (RFC 8707)
// and iss on every redirect (RFC 9207).
//
// Until the client and its redirect URI are validated, an error is an HTML
// page (status 400): the user agent is never sent to a URI that was not
// validated. After that, errors redirect to the client.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "authorize")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, http.StatusMethodNotAllowed, errf("invalid_request", "the authorization endpoint accepts GET only"))
		s.record(ctx, ev, http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	setParams(ev, q, authorizeParams...)
	page := func(e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.errorPage(w, http.StatusBadRequest, e)
		s.record(ctx, ev, http.StatusBadRequest)
	}
	for _, n := range []string{"client_id", "redirect_uri"} {
		if len(q[n]) > 1 {
			page(errf("invalid_request", "parameter %s is repeated (RFC 6749 §3.1)", n))
			return
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		page(errf("invalid_request", "client_id is missing"))
		return
	}
	client, err := s.resolveClient(ctx, clientID)
	if err != nil {
		page(errf("invalid_client", "%v", err))
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		page(errf("invalid_request", "redirect_uri is missing; this server requires it on every authorization request"))
		return
	}
	if !s.redirectAllowed(client, redirectURI) {
		page(errf("invalid_request", "redirect_uri %q is not registered for client %q (registered: %q); redirect URIs are compared by exact string match", redirectURI, clientID, client.RedirectURIs))
		return
	}

	// From here on, errors go back to the validated redirect URI.
	state := q.Get("state")
	redirectErr := func(e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.redirect(w, redirectURI, errorParams(e, state, s.issuer))
		s.record(ctx, ev, http.StatusFound)
	}
	if e := s.checkAuthorizeParams(q); e != nil {
		redirectErr(e)
		return
	}
	scopes, _ := s.parseScopes(q.Get("scope"))
	promptNone, promptLogin, promptConsent := parsePrompt(q.Get("prompt"))

	now := s.now()
	sid, se, ok := s.currentSession(r, now)
	loggedIn := ok && se.sub != ""
	fl := flow{
		id: randomID(), csrf: randomToken(), sessionID: sid, client: client,
		redirectURI: redirectURI, state: state, challenge: q.Get("code_challenge"),
		resource: q.Get("resource"), nonce: q.Get("nonce"), scopes: scopes,
		promptLogin: promptLogin, promptConsent: promptConsent,
		expires: now.Add(flowTTL),
	}
	if promptNone {
		// OpenID Connect Core §3.1.2.6: no page may be shown.
		switch {
		case !loggedIn:
			redirectErr(errf("login_required", "prompt=none, and nobody is signed in"))
		case !s.hasConsent(se.sub, client.ID, scopes):
			redirectErr(errf("consent_required", "prompt=none, and the user has not approved client %q for these scopes", client.ID))
		default:
			s.finish(w, r, ev, &fl, se.sub, se.authTime)
		}
		return
	}
	if !ok {
		sid, se = s.newSession(w, now)
		fl.sessionID = sid
	}
	s.mu.Lock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	s.st.flows[fl.id] = &fl
	s.mu.Unlock()
	ev.Detail["flow"] = fl.id
	switch {
	case !loggedIn || promptLogin:
		ev.Detail["outcome"] = "login_page"
		s.loginPage(w, http.StatusOK, &fl, "", "")
		s.record(ctx, ev, http.StatusOK)
	case promptConsent || !s.hasConsent(se.sub, client.ID, scopes):
		ev.Detail["outcome"] = "consent_page"
		ev.Detail["sub"] = se.sub
		s.consentPage(w, &fl, se.sub)
		s.record(ctx, ev, http.StatusOK)
	default:
		s.finish(w, r, ev, &fl, se.sub, se.authTime)
	}
}

// checkAuthorizeParams validates what follows the client and redirect URI.
func (s *Server) checkAuthorizeParams(q url.Values) *oauthError {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if len(q[n]) > 1 {
			if n == "resource" {
				return errf("invalid_target", "resource is repeated: this server grants one resource per request (RFC 8707 §2)")
			}
			return errf("invalid_request", "parameter %s is repeated (RFC 6749 §3.1)", n)
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "":
		return errf("invalid_request", "response_type is missing")
	case "code":
	default:
		return errf("unsupported_response_type", "response_type %q is not supported; only code is", rt)
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return errf("invalid_request", "response_mode %q is not supported; only query is", rm)
	}
	if _, ok := q["request"]; ok {
		return errf("request_not_supported", "request objects are not supported")
	}
	if _, ok := q["request_uri"]; ok {
		return errf("request_uri_not_supported", "request_uri is not supported")
	}
	challenge := q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case challenge == "":
		return errf("invalid_request", "code_challenge is missing: PKCE (RFC 7636) with S256 is required")
	case method == "":
		return errf("invalid_request", "code_challenge_method is missing; it must be S256 (the default, plain, is not supported)")
	case method != "S256":
		return errf("invalid_request", "code_challenge_method %q is not supported; only S256 is", method)
	case !validChallenge(challenge):
		return errf("invalid_request", "code_challenge is not a base64url-encoded SHA-256 hash (43 characters, RFC 7636 §4.2)")
	}
	if res, ok := q["resource"]; ok {
		if e := s.checkResource(res[0]); e != nil {
			return e
		}
	}
	if _, e := s.parseScopes(q.Get("scope")); e != nil {
		return e
	}
	if e := checkPrompt(q.Get("prompt")); e != nil {
		return e
	}
	return nil
}

// validChallenge reports whether c can be an S256 code challenge:
// BASE64URL(SHA256(verifier)), 43 characters without padding.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// checkResource applies RFC 8707 §2: an absolute URI without fragment. The
// server also requires https (MCP authorization: "all authorization server
// endpoints MUST be served over HTTPS", and resources are MCP servers);
// http is accepted only on loopback when the issuer itself is plain http.
func (s *Server) checkResource(v string) *oauthError {
	u, err := url.Parse(v)
	switch {
	case v == "":
		return errf("invalid_target", "resource is empty")
	case err != nil || !u.IsAbs() || u.Host == "":
		return errf("invalid_target", "resource %q is not an absolute URI (RFC 8707 §2)", v)
	case strings.Contains(v, "#"):
		return errf("invalid_target", "resource %q has a fragment (RFC 8707 §2)", v)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && s.issuerURL.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return errf("invalid_target", "resource %q must be an https URI", v)
}

// parseScopes splits a scope parameter (RFC 6749 §3.3): single spaces
// between valid scope tokens, each supported.
func (s *Server) parseScopes(raw string) ([]string, *oauthError) {
	if raw == "" {
		return nil, nil
	}
	var out []string
	for sc := range strings.SplitSeq(raw, " ") {
		switch {
		case sc == "":
			return nil, errf("invalid_scope", "scope %q has an empty entry: scopes are separated by single spaces (RFC 6749 §3.3)", raw)
		case !validScope(sc):
			return nil, errf("invalid_scope", "scope %q is not a valid scope token (RFC 6749 §3.3)", sc)
		case s.scopes != nil && !s.scopes[sc]:
			return nil, errf("invalid_scope", "scope %q is not supported; scopes_supported is %q", sc, s.advertised)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// checkPrompt validates the OpenID Connect prompt parameter (Core
// §3.1.2.1): none, login, consent, select_account; none stands alone.
func checkPrompt(p string) *oauthError {
	if p == "" {
		return nil
	}
	vals := strings.Split(p, " ")
	for _, v := range vals {
		switch v {
		case "none", "login", "consent", "select_account":
		default:
			return errf("invalid_request", "prompt value %q is not supported (none, login, consent, select_account)", v)
		}
	}
	if slices.Contains(vals, "none") && len(vals) > 1 {
		return errf("invalid_request", "prompt=none must not be combined with other values (OpenID Connect Core §3.1.2.1)")
	}
	return nil
}

// parsePrompt reads a checked prompt; select_account asks for a login.
func parsePrompt(p string) (none, login, consent bool) {
	for v := range strings.SplitSeq(p, " ") {
		switch v {
		case "none":
			none = true
		case "login", "select_account":
			login = true
		case "consent":
			consent = true
		}
	}
	return
}

// currentSession returns the browser's session, if its cookie names a live
// one.
func (s *Server) currentSession(r *http.Request, now time.Time) (string, session, bool) {
	c, err := r.Cookie(s.cookieName)
	if err != nil {
		return "", session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.st.sessions[c.Value]
	if se == nil || !now.Before(se.expires) {
		return "", session{}, false
	}
	return c.Value, *se, true
}

// newSession starts an anonymous session and sets its cookie; the login
// form binds to it.
func (s *Server) newSession(w http.ResponseWriter, now time.Time) (string, session) {
	id := randomToken()
	se := session{expires: now.Add(sessionTTL)}
	s.mu.Lock()
	s.st.sessions[id] = &se
	s.mu.Unlock()
	s.setSessionCookie(w, id)
	return id, se
}

// setSessionCookie sets the login session cookie: __Host- prefixed, Secure,
// HttpOnly, SameSite=Lax, Path=/ (RFC 6265bis §4.1.3.2; MCP security best
// practices, "Confused Deputy Problem").
func (s *Server) setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName, Value: id, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// hasConsent reports whether sub already approved client for every scope.
func (s *Server) hasConsent(sub, clientID string, scopes []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	approved := s.st.consents[sub][clientID]
	if approved == nil {
		return false
	}
	for _, sc := range scopes {
		if !approved[sc] {
			return false
		}
	}
	return true
}

// clientHost is what the consent page shows most prominently: the host of
// a client id URL (draft-ietf-oauth-client-id-metadata-document §6.2), or
// the id of a pre-registered client.
func clientHost(c *clientInfo) string {
	if c.CIMD {
		if u, err := url.Parse(c.ID); err == nil {
			return u.Host
		}
	}
	return c.ID
}

func (s *Server) loginPage(w http.ResponseWriter, status int, fl *flow, username, errText string) {
	title := "Sign in · " + s.issuerURL.Host
	if errText != "" {
		title = "Sign in failed · " + s.issuerURL.Host
	}
	s.page(w, status, "login", pageData{
		Title: title, Action: s.endpoint("/login"), FlowID: fl.id, CSRF: fl.csrf,
		ClientName: fl.client.Name, ClientHost: clientHost(fl.client), ClientID: fl.client.ID,
		Username: username, Error: errText, Hint: s.hint,
	})
}

func (s *Server) consentPage(w http.ResponseWriter, fl *flow, sub string) {
	username := sub
	if u := s.usersBySub[sub]; u != nil {
		username = u.Username
	}
	s.page(w, http.StatusOK, "consent", pageData{
		Title:  "Allow " + clientHost(fl.client) + "? · " + s.issuerURL.Host,
		Action: s.endpoint("/consent"), FlowID: fl.id, CSRF: fl.csrf,
		ClientName: fl.client.Name, ClientHost: clientHost(fl.client), ClientID: fl.client.ID,
		Username: username, Scopes: fl.scopes, Resource: fl.resource, RedirectURI: fl.redirectURI,
	})
}

// formFlow finds the flow a login or consent request continues and checks
// that it belongs to this browser (the session cookie) and, for a form
// post, carries the flow's CSRF token.
func (s *Server) formFlow(r *http.Request, id, csrf string, checkCSRF bool) (flow, session, int, *oauthError) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	fp := s.st.flows[id]
	if fp == nil || now.After(fp.expires) {
		return flow{}, session{}, http.StatusBadRequest, errf("invalid_request", "this sign-in request is unknown or has expired; start again from the application")
	}
	c, err := r.Cookie(s.cookieName)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(fp.sessionID)) != 1 {
		return flow{}, session{}, http.StatusForbidden, errf("invalid_request", "this form does not belong to this browser's session (the session cookie is missing or different); start again from the application")
	}
	if checkCSRF && subtle.ConstantTimeCompare([]byte(csrf), []byte(fp.csrf)) != 1 {
		return flow{}, session{}, http.StatusForbidden, errf("invalid_request", "the form's CSRF token is missing or wrong; start again from the application")
	}
	var se session
	if p := s.st.sessions[fp.sessionID]; p != nil && now.Before(p.expires) {
		se = *p
	}
	return *fp, se, 0, nil
}

// parsePost reads a form post of at most 64 KiB.
func parsePost(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, errf("invalid_request", "this endpoint accepts POST only")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, errf("invalid_request", "the form could not be read: %v", err)
	}
	return r.PostForm, nil
}

// handleLogin checks the login form (username, password, flow, csrf_token).
// A wrong password renders the form again with an error (status 401).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "login")
	form, e := parsePost(w, r)
	if e != nil {
		status := http.StatusBadRequest
		if r.Method != http.MethodPost {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "POST")
		}
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.errorPage(w, status, e)
		s.record(ctx, ev, status)
		return
	}
	setParams(ev, form, "flow", "username")
	fl, _, status, e := s.formFlow(r, form.Get("flow"), form.Get("csrf_token"), true)
	if e != nil {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.errorPage(w, status, e)
		s.record(ctx, ev, status)
		return
	}
	ev.Params["client_id"] = fl.client.ID
	username := form.Get("username")
	u := s.users[username]
	pw := form.Get("password")
	if u == nil || subtle.ConstantTimeCompare([]byte(u.Password), []byte(pw)) != 1 {
		ev.Detail["error"], ev.Detail["error_description"] = "access_denied", "wrong username or password"
		s.loginPage(w, http.StatusUnauthorized, &fl, username, "Wrong username or password.")
		s.record(ctx, ev, http.StatusUnauthorized)
		return
	}
	now := s.now()
	// A new session id at login, so a session id planted before the login
	// is worth nothing after it (session fixation).
	newID := randomToken()
	s.mu.Lock()
	delete(s.st.sessions, fl.sessionID)
	s.st.sessions[newID] = &session{sub: u.Subject, authTime: now, expires: now.Add(sessionTTL)}
	for _, f := range s.st.flows {
		if f.sessionID == fl.sessionID {
			f.sessionID = newID
		}
	}
	if f := s.st.flows[fl.id]; f != nil {
		f.loggedIn = true
	}
	s.mu.Unlock()
	fl.sessionID, fl.loggedIn = newID, true
	s.setSessionCookie(w, newID)
	ev.Detail["sub"] = u.Subject
	if fl.promptConsent || !s.hasConsent(u.Subject, fl.client.ID, fl.scopes) {
		ev.Detail["outcome"] = "consent_page"
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, s.endpoint("/consent")+"?flow="+url.QueryEscape(fl.id), http.StatusSeeOther)
		s.record(ctx, ev, http.StatusSeeOther)
		return
	}
	s.finish(w, r, ev, &fl, u.Subject, now)
}

// handleConsent shows (GET, ?flow=) and decides (POST: flow, csrf_token,
// decision=approve|deny) the consent for one flow.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "consent")
	fail := func(status int, e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.errorPage(w, status, e)
		s.record(ctx, ev, status)
	}
	if r.Method == http.MethodGet {
		id := r.URL.Query().Get("flow")
		ev.Params["flow"] = id
		fl, se, status, e := s.formFlow(r, id, "", false)
		if e != nil {
			fail(status, e)
			return
		}
		ev.Params["client_id"] = fl.client.ID
		if se.sub == "" || (fl.promptLogin && !fl.loggedIn) {
			ev.Detail["outcome"] = "login_page"
			s.loginPage(w, http.StatusOK, &fl, "", "")
			s.record(ctx, ev, http.StatusOK)
			return
		}
		ev.Detail["outcome"] = "consent_page"
		ev.Detail["sub"] = se.sub
		s.consentPage(w, &fl, se.sub)
		s.record(ctx, ev, http.StatusOK)
		return
	}
	form, e := parsePost(w, r)
	if e != nil {
		status := http.StatusBadRequest
		if r.Method != http.MethodPost {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "GET, POST")
		}
		fail(status, e)
		return
	}
	setParams(ev, form, "flow", "decision")
	fl, se, status, e := s.formFlow(r, form.Get("flow"), form.Get("csrf_token"), true)
	if e != nil {
		fail(status, e)
		return
	}
	ev.Params["client_id"] = fl.client.ID
	if se.sub == "" || (fl.promptLogin && !fl.loggedIn) {
		fail(http.StatusForbidden, errf("access_denied", "nobody is signed in; start again from the application"))
		return
	}
	ev.Detail["sub"] = se.sub
	ev.Detail["scope"] = strings.Join(fl.scopes, " ")
	switch form.Get("decision") {
	case "approve":
		s.mu.Lock()
		byClient := s.st.consents[se.sub]
		if byClient == nil {
			byClient = map[string]map[string]bool{}
			s.st.consents[se.sub] = byClient
		}
		approved := byClient[fl.client.ID]
		if approved == nil {
			approved = map[string]bool{}
			byClient[fl.client.ID] = approved
		}
		for _, sc := range fl.scopes {
			approved[sc] = true
		}
		s.mu.Unlock()
		s.finish(w, r, ev, &fl, se.sub, se.authTime)
	case "deny":
		s.mu.Lock()
		delete(s.st.flows, fl.id)
		s.mu.Unlock()
		e := errf("access_denied", "the user denied the request")
		ev.Detail["outcome"] = "denied"
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.redirect(w, fl.redirectURI, errorParams(e, fl.state, s.issuer))
		s.record(ctx, ev, http.StatusFound)
	default:
		fail(http.StatusBadRequest, errf("invalid_request", "decision must be approve or deny"))
	}
}

// handleLogout ends the browser's login session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	ev := newEvent(r, "logout")
	if c, err := r.Cookie(s.cookieName); err == nil {
		s.mu.Lock()
		if se := s.st.sessions[c.Value]; se != nil {
			ev.Detail["sub"] = se.sub
		}
		delete(s.st.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.page(w, http.StatusOK, "message", pageData{Title: "Signed out · " + s.issuerURL.Host, Heading: "Signed out", Description: "You are signed out of " + s.issuerURL.Host + "."})
	s.record(r.Context(), ev, http.StatusOK)
}

// finish issues an authorization code for a flow and redirects to the
// client with code, state and iss (RFC 6749 §4.1.2, RFC 9207 §2).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, ev *control.Event, fl *flow, sub string, authTime time.Time) {
	code := randomToken()
	now := s.now()
	s.mu.Lock()
	s.st.codes[hashSecret(code)] = &authCode{
		client: fl.client, redirectURI: fl.redirectURI, challenge: fl.challenge,
		resource: fl.resource, nonce: fl.nonce, sub: sub, scopes: fl.scopes,
		authTime: authTime, expires: now.Add(s.Settings().CodeTTL),
	}
	delete(s.st.flows, fl.id)
	s.mu.Unlock()
	ev.Detail["outcome"] = "code_issued"
	ev.Detail["sub"] = sub
	ev.Detail["code"] = control.Fingerprint(code)
	v := url.Values{"code": {code}, "iss": {s.issuer}}
	if fl.state != "" {
		v.Set("state", fl.state)
	}
	s.redirect(w, fl.redirectURI, v)
	s.record(r.Context(), ev, http.StatusFound)
}

// errorParams are the parameters of an error redirect (RFC 6749 §4.1.2.1,
// RFC 9207 §2).
func errorParams(e *oauthError, state, iss string) url.Values {
	v := url.Values{"error": {e.Code}, "error_description": {e.Description}, "iss": {iss}}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

// redirect answers 302 to a validated redirect URI with params added to its
// query, keeping any query it already has (RFC 6749 §3.1.2).
func (s *Server) redirect(w http.ResponseWriter, redirectURI string, params url.Values) {
	sep := "?"
	switch {
	case strings.HasSuffix(redirectURI, "?"):
		sep = ""
	case strings.Contains(redirectURI, "?"):
		sep = "&"
	}
	w.Header().Set("Location", redirectURI+sep+params.Encode())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
}
