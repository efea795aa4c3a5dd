package mockas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// registrationResponse is the client information response of RFC 7591
// §3.2.1: the issued credentials and every registered metadata value.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// Registration values this server supports.
var (
	registerAuthMethods = []string{"none", "client_secret_basic", "client_secret_post"}
	registerGrantTypes  = []string{"authorization_code", "refresh_token", "client_credentials"}
)

// registrationRequest is the client metadata of RFC 7591 §2 that this
// server understands; other fields are ignored, as §2 requires.
type registrationRequest struct {
	RedirectURIs            []string
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	ClientName              string
	Scope                   string
}

// parseRegistration reads and validates a registration request body. Its
// errors are RFC 7591 §3.2.2 errors: invalid_redirect_uri for a bad
// redirect URI, invalid_client_metadata for everything else.
func (s *Server) parseRegistration(body []byte, ev *control.Event) (*registrationRequest, *oauthError) {
	bad := func(format string, args ...any) (*registrationRequest, *oauthError) {
		return nil, errf("invalid_client_metadata", format, args...)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		if err == nil {
			err = errors.New("it is null")
		}
		return bad("the body is not a JSON object: %v", err)
	}
	str := func(name string) (string, error) {
		raw, ok := doc[name]
		if !ok {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("%s is not a string", name)
		}
		return v, nil
	}
	strs := func(name string) ([]string, bool, error) {
		raw, ok := doc[name]
		if !ok {
			return nil, false, nil
		}
		var v []string
		if err := json.Unmarshal(raw, &v); err != nil || v == nil {
			return nil, true, fmt.Errorf("%s is not an array of strings", name)
		}
		return v, true, nil
	}
	req := &registrationRequest{}
	var err error
	if req.ClientName, err = str("client_name"); err != nil {
		return bad("%v", err)
	}
	if req.Scope, err = str("scope"); err != nil {
		return bad("%v", err)
	}
	if req.TokenEndpointAuthMethod, err = str("token_endpoint_auth_method"); err != nil {
		return bad("%v", err)
	}
	redirects, hasRedirects, err := strs("redirect_uris")
	if err != nil {
		return bad("%v", err)
	}
	req.RedirectURIs = redirects
	gts, hasGTs, err := strs("grant_types")
	if err != nil {
		return bad("%v", err)
	}
	rts, hasRTs, err := strs("response_types")
	if err != nil {
		return bad("%v", err)
	}
	// Recorded as sent, before the checks, so a refused request shows
	// what the client asked for.
	ev.Params["client_name"] = req.ClientName
	ev.Params["token_endpoint_auth_method"] = req.TokenEndpointAuthMethod
	ev.Params["redirect_uris"] = strings.Join(redirects, " ")
	ev.Params["grant_types"] = strings.Join(gts, " ")
	ev.Params["response_types"] = strings.Join(rts, " ")
	ev.Params["scope"] = req.Scope
	for k, v := range ev.Params {
		if v == "" {
			delete(ev.Params, k)
		}
	}

	// RFC 7591 §2: the defaults.
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !hasGTs {
		gts = []string{"authorization_code"}
	}
	if !hasRTs {
		rts = []string{"code"}
	}
	if !slices.Contains(registerAuthMethods, req.TokenEndpointAuthMethod) {
		return bad("token_endpoint_auth_method %q is not supported (%s)", req.TokenEndpointAuthMethod, strings.Join(registerAuthMethods, ", "))
	}
	if len(gts) == 0 {
		return bad("grant_types is empty")
	}
	for _, gt := range gts {
		if !slices.Contains(registerGrantTypes, gt) {
			return bad("grant type %q is not supported (%s)", gt, strings.Join(registerGrantTypes, ", "))
		}
	}
	code := slices.Contains(gts, "authorization_code")
	switch {
	case slices.Contains(gts, "refresh_token") && !code:
		return bad("grant_types has refresh_token without authorization_code, the only grant that issues refresh tokens here")
	case slices.Contains(gts, "client_credentials") && req.TokenEndpointAuthMethod == "none":
		return bad("grant type client_credentials needs a confidential client, but token_endpoint_auth_method is none")
	}
	for _, rt := range rts {
		if rt != "code" {
			return bad("response type %q is not supported (code)", rt)
		}
	}
	switch {
	case code && len(rts) == 0:
		return bad("response_types must contain code, since grant_types has authorization_code (RFC 7591 §2.1)")
	case !code && len(rts) > 0 && hasRTs:
		return bad("response_types has code, but grant_types lacks authorization_code (RFC 7591 §2.1)")
	case !code:
		rts = []string{}
	}
	if code && (!hasRedirects || len(redirects) == 0) {
		return nil, errf("invalid_redirect_uri", "redirect_uris is required for the authorization_code grant")
	}
	for i, ru := range redirects {
		if err := checkRedirectURI(ru); err != nil {
			return nil, errf("invalid_redirect_uri", "redirect_uris[%d]: %v", i, err)
		}
	}
	if _, e := s.parseScopes(req.Scope); e != nil {
		return bad("%s", e.Description)
	}
	req.GrantTypes, req.ResponseTypes = gts, rts
	return req, nil
}

// handleRegister is the client registration endpoint of RFC 7591 at
// {issuer}/register, open to anyone while dynamic client registration is
// on (no initial access token). Public clients (token_endpoint_auth_method
// none) get only a client_id; confidential ones also a client_secret that
// never expires. A refused request registers nothing.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "register")
	fail := func(status int, e *oauthError) {
		ev.Detail["error"], ev.Detail["error_description"] = e.Code, e.Description
		control.WriteJSON(w, status, map[string]string{"error": e.Code, "error_description": e.Description})
		s.record(ctx, ev, status)
	}
	if !s.Settings().DCR {
		fail(http.StatusNotFound, errf("not_found", "dynamic client registration (RFC 7591) is turned off on this server, so its metadata has no registration_endpoint"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(http.StatusMethodNotAllowed, errf("invalid_request", "the registration endpoint accepts POST only"))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		fail(http.StatusBadRequest, errf("invalid_client_metadata", "the body must be application/json, not %q (RFC 7591 §3.1)", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		fail(http.StatusBadRequest, errf("invalid_client_metadata", "the body could not be read: %v", err))
		return
	}
	req, e := s.parseRegistration(body, ev)
	if e != nil {
		fail(http.StatusBadRequest, e)
		return
	}
	c := &clientInfo{
		ID: "dcr-" + randomID(), Name: req.ClientName, RedirectURIs: req.RedirectURIs,
		NoRefresh: !slices.Contains(req.GrantTypes, "refresh_token"), GrantTypes: req.GrantTypes,
		AuthMethod: req.TokenEndpointAuthMethod,
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	now := s.now()
	resp := registrationResponse{
		ClientID: c.ID, ClientIDIssuedAt: now.Unix(), RedirectURIs: req.RedirectURIs,
		TokenEndpointAuthMethod: req.TokenEndpointAuthMethod, GrantTypes: req.GrantTypes,
		ResponseTypes: req.ResponseTypes, ClientName: req.ClientName, Scope: req.Scope,
	}
	if req.TokenEndpointAuthMethod != "none" {
		c.Secret = randomToken()
		never := int64(0)
		resp.ClientSecret, resp.ClientSecretExpiresAt = c.Secret, &never
		ev.Detail["client_secret"] = control.Fingerprint(c.Secret)
	}
	s.mu.Lock()
	s.st.registered[c.ID] = c
	s.mu.Unlock()
	ev.Detail["client_id"] = c.ID
	control.WriteJSON(w, http.StatusCreated, resp)
	s.record(ctx, ev, http.StatusCreated)
}
