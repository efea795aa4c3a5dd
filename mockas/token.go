package mockas

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// tokenResponse is a successful access token response (RFC 6749 §5.1,
// OpenID Connect Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// IssuedTokenType is a token exchange's (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// tokenParams are the token request parameters a token event records;
// secrets among them are fingerprinted.
var tokenParams = []string{
	"grant_type", "client_id", "resource", "scope", "redirect_uri",
	"code", "code_verifier", "refresh_token", "client_secret", "client_assertion", "assertion",
	"audience", "requested_token_type", "subject_token_type", "subject_token",
}

// writeOAuthError answers with an RFC 6749 §5.2 error: 400, or 401 with a
// WWW-Authenticate challenge for a failed client authentication.
func (s *Server) writeOAuthError(w http.ResponseWriter, e *oauthError) int {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.issuer+`"`)
	}
	w.Header().Set("Pragma", "no-cache")
	control.WriteJSON(w, status, map[string]string{"error": e.Code, "error_description": e.Description})
	return status
}

// parseTokenRequest reads a POST with an application/x-www-form-urlencoded
// body (RFC 6749 §3.2): parameters in the query string are refused, and so
// is any repeated parameter (§3.2: "MUST NOT be included more than once").
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &oauthError{Code: "invalid_request", Description: "this endpoint accepts POST only", Status: http.StatusMethodNotAllowed}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errf("invalid_request", "the body must be application/x-www-form-urlencoded, not %q", r.Header.Get("Content-Type"))
	}
	if r.URL.RawQuery != "" {
		return nil, errf("invalid_request", "parameters must be sent in the request body, not the query string")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, errf("invalid_request", "the body could not be read: %v", err)
	}
	form := r.PostForm
	names := make([]string, 0, len(form))
	for n := range form {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if len(form[n]) > 1 {
			if n == "resource" {
				return nil, errf("invalid_target", "resource is repeated: this server grants one resource per request (RFC 8707 §2)")
			}
			return nil, errf("invalid_request", "parameter %s is repeated (RFC 6749 §3.2)", n)
		}
	}
	return form, nil
}

// authenticateClient identifies and authenticates the client of a token or
// revocation request (RFC 6749 §2.3): a confidential client with
// client_secret_basic (form-encoded id and secret, §2.3.1) or
// client_secret_post, or with a client assertion (private_key_jwt, RFC 7523
// §2.2) when it registered a key; a public client (pre-registered without
// secret, or a client metadata document URL) with none. Exactly one method:
// a public client that sends any secret, even an empty Basic password, is
// refused.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*clientInfo, string, *oauthError) {
	_, assertion := form["client_assertion"]
	if _, typed := form["client_assertion_type"]; typed || assertion {
		return s.assertionClient(r, form)
	}
	id, secret, method, e := clientCredentials(r, form)
	if e != nil {
		return nil, method, e
	}
	c, e := s.checkClientSecret(id, secret, method)
	return c, method, e
}

// unauthorizedClient is an invalid_client refusal, with 401 (RFC 6749 §5.2).
func unauthorizedClient(format string, args ...any) *oauthError {
	e := errf("invalid_client", format, args...)
	e.Status = http.StatusUnauthorized
	return e
}

// assertionClient authenticates a client by its client assertion
// (private_key_jwt, RFC 7523 §2.2), and refuses one that also sent a secret.
func (s *Server) assertionClient(r *http.Request, form url.Values) (*clientInfo, string, *oauthError) {
	const method = "private_key_jwt"
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		return nil, method, errf("invalid_request", "the client sent a client assertion and a secret; use one method (RFC 6749 §2.3)")
	}
	c, e := s.verifyAssertion(form, s.endpoint(strings.TrimPrefix(r.URL.Path, s.prefix)))
	if e != nil {
		e.Status = http.StatusUnauthorized
		return nil, method, e
	}
	return c, method, nil
}

// clientCredentials reads the client id and secret a request presents, and
// the method it used: client_secret_basic, client_secret_post or none.
func clientCredentials(r *http.Request, form url.Values) (id, secret, method string, e *oauthError) {
	if r.Header.Get("Authorization") != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", "", "", unauthorizedClient("the Authorization header is not HTTP Basic client credentials")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", "", "", unauthorizedClient("the Basic credentials are not form-encoded (RFC 6749 §2.3.1)")
		}
		if _, ok := form["client_secret"]; ok {
			return "", "", "", errf("invalid_request", "the client used both client_secret_basic and client_secret_post; use one method (RFC 6749 §2.3)")
		}
		if fid, ok := form["client_id"]; ok && fid[0] != id {
			return "", "", "", unauthorizedClient("client_id %q in the body differs from %q in the Authorization header", fid[0], id)
		}
		return id, secret, "client_secret_basic", nil
	}
	if sec, ok := form["client_secret"]; ok {
		if form.Get("client_id") == "" {
			return "", "", "", unauthorizedClient("client_secret was sent without client_id")
		}
		return form.Get("client_id"), sec[0], "client_secret_post", nil
	}
	if form.Get("client_id") == "" {
		return "", "", "", unauthorizedClient("no client_id and no client authentication")
	}
	return form.Get("client_id"), "", "none", nil
}

// checkClientSecret authenticates client id, which presented secret with
// method: a registered client by its registration, a client metadata
// document URL as a public client.
func (s *Server) checkClientSecret(id, secret, method string) (*clientInfo, *oauthError) {
	if c := s.lookupClient(id); c != nil {
		switch {
		case c.PublicKey != nil:
			return nil, unauthorizedClient("client %q registered a public key and must authenticate with private_key_jwt (a client_assertion, RFC 7523), but it used %s", id, method)
		case c.Secret == "" && method != "none":
			return nil, unauthorizedClient("client %q is a public client (token_endpoint_auth_method none) and must not send a client secret, but it used %s", id, method)
		case c.Secret == "":
			return c, nil
		case method == "none":
			return nil, unauthorizedClient("client %q is confidential and must authenticate with client_secret_basic or client_secret_post", id)
		case subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1:
			return nil, unauthorizedClient("the client secret of %q is wrong (%s)", id, method)
		case c.AuthMethod != "" && c.AuthMethod != method:
			return nil, unauthorizedClient("client %q registered token_endpoint_auth_method %s, but it used %s", id, c.AuthMethod, method)
		}
		return c, nil
	}
	if s.Settings().CIMD && strings.HasPrefix(strings.ToLower(id), "https://") {
		if method != "none" {
			return nil, unauthorizedClient("client %q is identified by a client metadata document, so it is public and must not send a client secret, but it used %s", id, method)
		}
		// Which document it is was settled at the authorization request; the
		// grant names the client it was issued to.
		return &clientInfo{ID: id, CIMD: true}, nil
	}
	return nil, unauthorizedClient("client_id %q is not registered with this server", id)
}

// handleToken is the token endpoint (RFC 6749 §3.2) for the
// authorization_code (with PKCE, RFC 7636 §4.6), refresh_token (with
// rotation, OAuth 2.1 §4.3.1) and client_credentials (RFC 6749 §4.4) grants. A refused request stores nothing,
// except that a replayed code or rotated refresh token revokes its grant.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "token")
	fail := func(e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.record(ctx, ev, s.writeOAuthError(w, e))
	}
	form, e := parseTokenRequest(w, r)
	if e != nil {
		fail(e)
		return
	}
	setParams(ev, form, tokenParams...)
	jkt, e := s.checkTokenDPoP(w, r, ev)
	if e != nil {
		fail(e)
		return
	}
	if form.Get("grant_type") == grantTypeJWTBearer && !presentsClientAuth(r, form) {
		// A workload presents its JWT alone (SEP-1933): the assertion is
		// the only credential.
		ev.Detail["auth_method"] = "none"
		resp, iss, e := s.grantJWTBearer(form, s.endpoint(strings.TrimPrefix(r.URL.Path, s.prefix)), jkt, s.now())
		if e != nil {
			fail(e)
			return
		}
		s.answerToken(ctx, w, ev, resp, iss)
		return
	}
	client, method, e := s.authenticateClient(r, form)
	if method != "" {
		ev.Detail["auth_method"] = method
	}
	if e != nil {
		fail(e)
		return
	}
	ev.Params["client_id"] = client.ID
	if method == "client_secret_basic" {
		// The secret came in the header; record its fingerprint like a
		// client_secret_post one.
		_, pass, _ := r.BasicAuth()
		if sec, err := url.QueryUnescape(pass); err == nil && sec != "" {
			ev.Params["client_secret"] = control.Fingerprint(sec)
		}
	}
	now := s.now()
	var resp *tokenResponse
	var iss *issued
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		resp, iss, e = s.grantCode(form, client, jkt, now)
	case "refresh_token":
		resp, iss, e = s.grantRefresh(form, client, jkt, now)
	case "client_credentials":
		resp, iss, e = s.grantClientCredentials(form, client, jkt, now)
	case grantTypeTokenExchange:
		resp, iss, e = s.grantTokenExchange(form, client, now)
	case grantTypeJWTBearer:
		// With client authentication: an enterprise identity provider's
		// ID-JAG (SEP-990), not a workload's JWT.
		resp, iss, e = s.grantIDJAG(form, client, jkt, now)
	case "":
		e = errf("invalid_request", "grant_type is missing")
	default:
		e = errf("unsupported_grant_type", "grant_type %q is not supported (authorization_code, refresh_token, client_credentials, %s, %s)", gt, grantTypeJWTBearer, grantTypeTokenExchange)
	}
	if e != nil {
		fail(e)
		return
	}
	s.answerToken(ctx, w, ev, resp, iss)
}

// answerToken writes a successful token response and records its event.
func (s *Server) answerToken(ctx context.Context, w http.ResponseWriter, ev *control.Event, resp *tokenResponse, iss *issued) {
	ev.Detail["access_token"] = control.Fingerprint(resp.AccessToken)
	ev.Detail["jti"] = iss.jti
	ev.Detail["sub"] = iss.sub
	ev.Detail["aud"] = iss.aud
	ev.Detail["scope"] = resp.Scope
	ev.Detail[detailTokenType] = resp.TokenType
	if resp.RefreshToken != "" {
		ev.Detail["refresh_token"] = control.Fingerprint(resp.RefreshToken)
	}
	if resp.IDToken != "" {
		ev.Detail["id_token"] = control.Fingerprint(resp.IDToken)
	}
	if set := s.Settings(); set.DPoP && set.DPoPNonce {
		w.Header().Set("DPoP-Nonce", s.DPoPNonce())
	}
	w.Header().Set("Pragma", "no-cache")
	control.WriteJSON(w, http.StatusOK, resp) // Cache-Control: no-store (RFC 6749 §5.1)
	s.record(ctx, ev, http.StatusOK)
}

// issued names what one token response issued, for the token event.
type issued struct{ jti, sub, aud string }

// grantCode redeems an authorization code; jkt, when not empty, binds the
// grant to a DPoP key.
func (s *Server) grantCode(form url.Values, c *clientInfo, jkt string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, nil, errf("invalid_request", "code is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	ac := s.st.codes[hashSecret(code)]
	if ac == nil {
		return nil, nil, errf("invalid_grant", "the authorization code is unknown")
	}
	if ac.used {
		// OAuth 2.1 §4.1.3: a code used twice revokes what it issued.
		s.st.revokeFamily(ac.family, "its authorization code was presented a second time")
		return nil, nil, errf("invalid_grant", "the authorization code was already used; every token issued for it is now revoked (OAuth 2.1 §4.1.3)")
	}
	if now.After(ac.expires) {
		return nil, nil, errf("invalid_grant", "the authorization code expired")
	}
	if ac.client.ID != c.ID {
		return nil, nil, errf("invalid_grant", "the authorization code was issued to another client")
	}
	ru, ok := form["redirect_uri"]
	if !ok {
		return nil, nil, errf("invalid_request", "redirect_uri is missing; the authorization request carried one, so the token request must repeat it (RFC 6749 §4.1.3)")
	}
	if !s.redirectMatch(ac.redirectURI, ru[0]) {
		return nil, nil, errf("invalid_grant", "redirect_uri %q differs from %q of the authorization request", ru[0], ac.redirectURI)
	}
	v, ok := form["code_verifier"]
	if !ok {
		return nil, nil, errf("invalid_request", "code_verifier is missing; the authorization request carried a code_challenge (RFC 7636 §4.5)")
	}
	if !validVerifier(v[0]) {
		return nil, nil, errf("invalid_grant", "code_verifier is not 43 to 128 unreserved characters (RFC 7636 §4.1)")
	}
	sum := sha256.Sum256([]byte(v[0]))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, nil, errf("invalid_grant", "code_verifier does not match the code_challenge (S256, RFC 7636 §4.6)")
	}
	if res, ok := form["resource"]; ok && res[0] != ac.resource {
		if ac.resource == "" {
			return nil, nil, errf("invalid_target", "resource %q was not part of the authorization request", res[0])
		}
		return nil, nil, errf("invalid_target", "resource %q differs from %q of the authorization request (RFC 8707 §2.2)", res[0], ac.resource)
	}
	famID := randomID()
	fam := &family{client: ac.client, sub: ac.sub, resource: ac.resource, scopes: ac.scopes, authTime: ac.authTime, jkt: jkt}
	resp, iss, err := s.issueLocked(famID, fam, ac.scopes, ac.nonce, now)
	if err != nil {
		return nil, nil, err
	}
	ac.used = true
	ac.family = famID
	s.st.families[famID] = fam
	return resp, iss, nil
}

// grantRefresh rotates a refresh token (OAuth 2.1 §4.3.1): the presented
// token is spent, a new one is issued; presenting a spent one revokes the
// whole family. A grant bound to a DPoP key needs a proof of that key; an
// unbound grant refreshed with a proof becomes bound to its key.
func (s *Server) grantRefresh(form url.Values, c *clientInfo, jkt string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, nil, errf("invalid_request", "refresh_token is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	rec := s.st.refresh[hashSecret(rt)]
	if rec == nil {
		return nil, nil, errf("invalid_grant", "the refresh token is unknown or expired")
	}
	fam := s.st.families[rec.family]
	switch {
	case fam == nil:
		return nil, nil, errf("invalid_grant", "the refresh token is unknown or expired")
	case fam.client.ID != c.ID:
		return nil, nil, errf("invalid_grant", "the refresh token was issued to another client")
	}
	// Before the rotation check: a thief without the key must not be able
	// to revoke the grant by replaying a rotated token (RFC 9449 §1).
	if e := checkRefreshBinding(fam, jkt); e != nil {
		return nil, nil, e
	}
	switch {
	case fam.revoked:
		return nil, nil, errf("invalid_grant", "the refresh token was revoked: %s", fam.revokedWhy)
	case rec.used:
		s.st.revokeFamily(rec.family, "a refresh token was presented again after rotation")
		return nil, nil, errf("invalid_grant", "the refresh token was already used (rotated); the whole grant is now revoked (OAuth 2.1 §4.3.1)")
	case now.After(rec.expires):
		return nil, nil, errf("invalid_grant", "the refresh token expired")
	}
	scopes := fam.scopes
	if raw, ok := form["scope"]; ok {
		req, e := s.parseScopes(raw[0])
		if e != nil {
			return nil, nil, e
		}
		for _, sc := range req {
			if !slices.Contains(fam.scopes, sc) {
				return nil, nil, errf("invalid_scope", "scope %q was not granted; a refresh may only narrow the scope (RFC 6749 §6)", sc)
			}
		}
		scopes = req
	}
	if res, ok := form["resource"]; ok && res[0] != fam.resource {
		if fam.resource == "" {
			return nil, nil, errf("invalid_target", "resource %q was not part of the grant", res[0])
		}
		return nil, nil, errf("invalid_target", "resource %q differs from %q of the grant (RFC 8707 §2.2)", res[0], fam.resource)
	}
	if fam.jkt == "" {
		fam.jkt = jkt
	}
	resp, iss, err := s.issueLocked(rec.family, fam, scopes, "", now)
	if err != nil {
		return nil, nil, err
	}
	rec.used = true
	return resp, iss, nil
}

// grantClientCredentials issues an access token to a confidential client
// for itself (RFC 6749 §4.4): sub is the client id, aud the requested
// resource (else the client id), and there is no refresh token (§4.4.3).
// OpenID scopes are refused: they need a signed-in user.
func (s *Server) grantClientCredentials(form url.Values, c *clientInfo, jkt string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	switch {
	case !c.confidential():
		return nil, nil, errf("unauthorized_client", "client %q is a public client; the client_credentials grant is only for confidential clients, which authenticate (RFC 6749 §4.4)", c.ID)
	case !c.allows("client_credentials"):
		return nil, nil, errf("unauthorized_client", "client %q did not register the client_credentials grant type (its grant_types are %q)", c.ID, c.GrantTypes)
	}
	scopes, e := s.parseScopes(form.Get("scope"))
	if e != nil {
		return nil, nil, e
	}
	for _, sc := range scopes {
		if slices.Contains(oidcScopes, sc) {
			return nil, nil, errf("invalid_scope", "scope %q needs a signed-in user, and the client_credentials grant has none", sc)
		}
	}
	resource := ""
	if res, ok := form["resource"]; ok {
		if e := s.checkResource(res[0]); e != nil {
			return nil, nil, e
		}
		resource = res[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	famID := randomID()
	fam := &family{client: c, sub: c.ID, resource: resource, scopes: scopes, clientCredentials: true, jkt: jkt}
	resp, iss, err := s.issueLocked(famID, fam, scopes, "", now)
	if err != nil {
		return nil, nil, err
	}
	s.st.families[famID] = fam
	return resp, iss, nil
}

// validVerifier checks RFC 7636 §4.1: 43 to 128 characters of
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0) {
			return false
		}
	}
	return true
}

// issueLocked mints an access token (RFC 9068), a refresh token unless the
// client opted out of the grant or the grant is client_credentials, and an ID token when openid was granted.
// The access token is bound to the family's DPoP key, if any (cnf.jkt,
// token_type DPoP). It stores them under the family famID; s.mu must be held.
func (s *Server) issueLocked(famID string, fam *family, scopes []string, nonce string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	jti := randomID()
	aud := fam.resource
	if aud == "" {
		aud = fam.client.ID
	}
	scope := strings.Join(scopes, " ")
	set := s.Settings()
	exp := now.Add(set.AccessTokenTTL)
	var authTime int64
	if !fam.authTime.IsZero() {
		authTime = fam.authTime.Unix()
	}
	var cnf *confirmation
	tokenType := "Bearer"
	if fam.jkt != "" {
		cnf, tokenType = &confirmation{JKT: fam.jkt}, "DPoP"
	}
	at, err := s.signAccess(accessClaims{
		Claims: jwt.Claims{
			Issuer: s.issuer, Subject: fam.sub, Audience: jwt.Audience{aud},
			Expiry: numericDate(exp), IssuedAt: numericDate(now), NotBefore: numericDate(now), ID: jti,
		},
		Scope: scope, ClientID: fam.client.ID, AuthTime: authTime, Cnf: cnf,
	})
	if err != nil {
		return nil, nil, &oauthError{Code: "server_error", Description: "signing the access token failed: " + err.Error(), Status: http.StatusInternalServerError}
	}
	resp := &tokenResponse{AccessToken: at, TokenType: tokenType, ExpiresIn: int64(set.AccessTokenTTL / time.Second), Scope: scope}
	if slices.Contains(scopes, "openid") {
		u := s.usersBySub[fam.sub]
		c := idClaims{
			Claims: jwt.Claims{
				Issuer: s.issuer, Subject: fam.sub, Audience: jwt.Audience{fam.client.ID},
				Expiry: numericDate(exp), IssuedAt: numericDate(now),
			},
			AuthTime: fam.authTime.Unix(), Nonce: nonce, AtHash: atHash(at), AZP: fam.client.ID,
		}
		// OpenID Connect Core §5.4: the email and profile scopes request
		// these claims.
		if u != nil && slices.Contains(scopes, "email") && u.Email != "" {
			verified := !u.EmailUnverified
			c.Email, c.EmailVerified = u.Email, &verified
		}
		if u != nil && slices.Contains(scopes, "profile") {
			c.Name = u.Name
		}
		if u != nil && slices.Contains(scopes, "groups") {
			c.Groups = slices.Clone(u.Groups)
			if c.Groups == nil {
				c.Groups = []string{}
			}
		}
		if resp.IDToken, err = s.signID(c); err != nil {
			return nil, nil, &oauthError{Code: "server_error", Description: "signing the ID token failed: " + err.Error(), Status: http.StatusInternalServerError}
		}
	}
	s.st.access[jti] = &accessRecord{family: famID, expires: exp}
	if !fam.client.NoRefresh && !fam.clientCredentials {
		resp.RefreshToken = randomToken()
		s.st.refresh[hashSecret(resp.RefreshToken)] = &refreshRecord{family: famID, expires: now.Add(set.RefreshTokenTTL)}
	}
	return resp, &issued{jti: jti, sub: fam.sub, aud: aud}, nil
}

// handleRevoke is the revocation endpoint (RFC 7009). Revoking a refresh
// token revokes its whole grant (§2.1: "SHOULD also invalidate all access
// tokens based on the same authorization grant"); revoking an access token
// revokes that token. An unknown or invalid token is answered 200 (§2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "revoke")
	fail := func(e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		s.record(ctx, ev, s.writeOAuthError(w, e))
	}
	form, e := parseTokenRequest(w, r)
	if e != nil {
		fail(e)
		return
	}
	setParams(ev, form, "token", "token_type_hint", "client_id")
	client, method, e := s.authenticateClient(r, form)
	if method != "" {
		ev.Detail["auth_method"] = method
	}
	if e != nil {
		fail(e)
		return
	}
	ev.Params["client_id"] = client.ID
	tok := form.Get("token")
	if tok == "" {
		fail(errf("invalid_request", "token is missing"))
		return
	}
	notYours := errf("invalid_request", "the token was issued to another client (RFC 7009 §2.1)")
	s.mu.Lock()
	if rec := s.st.refresh[hashSecret(tok)]; rec != nil {
		fam := s.st.families[rec.family]
		if fam != nil && fam.client.ID != client.ID {
			s.mu.Unlock()
			fail(notYours)
			return
		}
		s.st.revokeFamily(rec.family, "its refresh token was revoked (RFC 7009)")
		ev.Detail["revoked"] = "refresh_token"
	}
	s.mu.Unlock()
	if ev.Detail["revoked"] == "" {
		if c, err := s.parseAccess(tok); err == nil {
			if c.ClientID != client.ID {
				fail(notYours)
				return
			}
			s.mu.Lock()
			if rec := s.st.access[c.ID]; rec != nil {
				rec.revoked = true
				ev.Detail["revoked"] = "access_token"
				ev.Detail["jti"] = c.ID
			}
			s.mu.Unlock()
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s.record(ctx, ev, http.StatusOK)
}
