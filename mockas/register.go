package mockas

import (
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

// sentRegistration is a registration request as the client sent it, with
// whether each array was present: an absent one takes its RFC 7591 §2
// default, an empty one does not.
type sentRegistration struct {
	registrationRequest
	hasRedirects, hasGrantTypes, hasResponseTypes bool
}

// parseRegistration reads and validates a registration request body. Its
// errors are RFC 7591 §3.2.2 errors: invalid_redirect_uri for a bad
// redirect URI, invalid_client_metadata for everything else.
func (s *Server) parseRegistration(body []byte, ev *control.Event) (*registrationRequest, *oauthError) {
	sent, err := decodeRegistration(body)
	if err != nil {
		return nil, errf("invalid_client_metadata", "%v", err)
	}
	// Recorded as sent, before the checks, so a refused request shows
	// what the client asked for.
	sent.record(ev)
	req := sent.withDefaults()
	if err := checkRegistrationGrants(req); err != nil {
		return nil, errf("invalid_client_metadata", "%v", err)
	}
	if req.ResponseTypes, err = registrationResponseTypes(req.GrantTypes, req.ResponseTypes, sent.hasResponseTypes); err != nil {
		return nil, errf("invalid_client_metadata", "%v", err)
	}
	if e := checkRegistrationRedirects(req, sent.hasRedirects); e != nil {
		return nil, e
	}
	if _, e := s.parseScopes(req.Scope); e != nil {
		return nil, errf("invalid_client_metadata", "%s", e.Description)
	}
	return req, nil
}

// decodeRegistration reads the client metadata this server understands
// from body, each field of the type RFC 7591 §2 gives it.
func decodeRegistration(body []byte) (*sentRegistration, error) {
	doc, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("the body is not a JSON object: %v", err)
	}
	sent := &sentRegistration{}
	for _, f := range []struct {
		name string
		to   *string
	}{
		{"client_name", &sent.ClientName},
		{"scope", &sent.Scope},
		{"token_endpoint_auth_method", &sent.TokenEndpointAuthMethod},
	} {
		var ok bool
		if *f.to, _, ok = doc.str(f.name); !ok {
			return nil, fmt.Errorf("%s is not a string", f.name)
		}
	}
	for _, f := range []struct {
		name    string
		to      *[]string
		present *bool
	}{
		{"redirect_uris", &sent.RedirectURIs, &sent.hasRedirects},
		{"grant_types", &sent.GrantTypes, &sent.hasGrantTypes},
		{"response_types", &sent.ResponseTypes, &sent.hasResponseTypes},
	} {
		var ok bool
		if *f.to, *f.present, ok = doc.strs(f.name); !ok || (*f.present && *f.to == nil) {
			return nil, fmt.Errorf("%s is not an array of strings", f.name)
		}
	}
	return sent, nil
}

// record puts the request's values into ev's parameters, those sent only.
func (sent *sentRegistration) record(ev *control.Event) {
	for k, v := range map[string]string{
		"client_name":                sent.ClientName,
		"token_endpoint_auth_method": sent.TokenEndpointAuthMethod,
		"redirect_uris":              strings.Join(sent.RedirectURIs, " "),
		"grant_types":                strings.Join(sent.GrantTypes, " "),
		"response_types":             strings.Join(sent.ResponseTypes, " "),
		"scope":                      sent.Scope,
	} {
		ev.Params[k] = v
	}
	for k, v := range ev.Params {
		if v == "" {
			delete(ev.Params, k)
		}
	}
}

// withDefaults is the request with RFC 7591 §2's defaults in place of
// what was not sent.
func (sent *sentRegistration) withDefaults() *registrationRequest {
	req := sent.registrationRequest
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !sent.hasGrantTypes {
		req.GrantTypes = []string{"authorization_code"}
	}
	if !sent.hasResponseTypes {
		req.ResponseTypes = []string{"code"}
	}
	return &req
}

// checkRegistrationGrants checks the authentication method and the grant
// types, and that they go together.
func checkRegistrationGrants(req *registrationRequest) error {
	if !slices.Contains(registerAuthMethods, req.TokenEndpointAuthMethod) {
		return fmt.Errorf("token_endpoint_auth_method %q is not supported (%s)", req.TokenEndpointAuthMethod, strings.Join(registerAuthMethods, ", "))
	}
	if len(req.GrantTypes) == 0 {
		return errors.New("grant_types is empty")
	}
	for _, gt := range req.GrantTypes {
		if !slices.Contains(registerGrantTypes, gt) {
			return fmt.Errorf("grant type %q is not supported (%s)", gt, strings.Join(registerGrantTypes, ", "))
		}
	}
	switch {
	case slices.Contains(req.GrantTypes, "refresh_token") && !slices.Contains(req.GrantTypes, "authorization_code"):
		return errors.New("grant_types has refresh_token without authorization_code, the only grant that issues refresh tokens here")
	case slices.Contains(req.GrantTypes, "client_credentials") && req.TokenEndpointAuthMethod == "none":
		return errors.New("grant type client_credentials needs a confidential client, but token_endpoint_auth_method is none")
	}
	return nil
}

// registrationResponseTypes checks the response types against the grant
// types (RFC 7591 §2.1) and returns those to register: none without the
// authorization_code grant.
func registrationResponseTypes(gts, rts []string, sent bool) ([]string, error) {
	for _, rt := range rts {
		if rt != "code" {
			return nil, fmt.Errorf("response type %q is not supported (code)", rt)
		}
	}
	code := slices.Contains(gts, "authorization_code")
	switch {
	case code && len(rts) == 0:
		return nil, errors.New("response_types must contain code, since grant_types has authorization_code (RFC 7591 §2.1)")
	case !code && len(rts) > 0 && sent:
		return nil, errors.New("response_types has code, but grant_types lacks authorization_code (RFC 7591 §2.1)")
	case !code:
		return []string{}, nil
	}
	return rts, nil
}

// checkRegistrationRedirects checks the redirect URIs: required for the
// authorization_code grant, and each one acceptable.
func checkRegistrationRedirects(req *registrationRequest, sent bool) *oauthError {
	if slices.Contains(req.GrantTypes, "authorization_code") && (!sent || len(req.RedirectURIs) == 0) {
		return errf("invalid_redirect_uri", "redirect_uris is required for the authorization_code grant")
	}
	for i, ru := range req.RedirectURIs {
		if err := checkRedirectURI(ru); err != nil {
			return errf("invalid_redirect_uri", "redirect_uris[%d]: %v", i, err)
		}
	}
	return nil
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
