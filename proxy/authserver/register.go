package authserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/redact"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
)

// PathRegister is the dynamic client registration endpoint (RFC 7591).
const PathRegister = "/.mcp-proxy/register"

// registrationResponse is RFC 7591 §3.2.1: the client id and the metadata
// as registered. No client secret and no registration access token.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
}

// registrationEnabled reports whether MCP clients may register here.
func (s *Server) registrationEnabled() bool { return s.o.Registry != nil }

// register is the registration endpoint. Every refusal is an RFC 7591
// §3.2.2 error body (with the request id) and stores nothing.
func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	if !s.registrationEnabled() {
		return apierror.New(apierror.CodeRegistrationDisabled,
			"Dynamic client registration is turned off on this proxy (disable_client_registration); use an MCP client with a Client ID Metadata Document, or ask the operator to turn registration on.")
	}
	if r.Method != http.MethodPost {
		return apierror.MethodNotAllowed(r, http.MethodPost)
	}
	if ok, wait := s.o.RegistrationLimit.Allow(r); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		e := apierror.New(apierror.CodeRegistrationRateLimited,
			"Too many client registrations from this address or in total; try again after the time in the Retry-After header.")
		e.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
		return e
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return apierror.New(apierror.CodeInvalidClientMetadata,
			"The registration request must be JSON (Content-Type: application/json), not %q.", redact.Truncate(mt, 60))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, registration.MaxBodyBytes+1))
	if err != nil {
		return apierror.Wrap(err, apierror.CodeInvalidClientMetadata, "The registration request could not be read.")
	}
	if len(body) > registration.MaxBodyBytes {
		return apierror.New(apierror.CodeInvalidClientMetadata,
			"The registration request is larger than %d bytes.", registration.MaxBodyBytes).WithStatus(http.StatusRequestEntityTooLarge)
	}
	req, err := registration.Decode(body)
	if err != nil {
		var re *registration.Error
		if errors.As(err, &re) && re.Code == registration.CodeInvalidRedirectURI {
			return apierror.New(apierror.CodeInvalidRedirectURI, "The registration was refused: %s.", re.Description)
		}
		desc := err.Error()
		if re != nil {
			desc = re.Description
		}
		return apierror.New(apierror.CodeInvalidClientMetadata, "The registration was refused: %s.", desc)
	}
	c, err := s.o.Registry.Register(r.Context(), s.route, req)
	if errors.Is(err, registration.ErrFull) {
		return apierror.New(apierror.CodeRegistrationLimitReached,
			"The proxy holds the most client registrations it keeps (%d); unused ones expire after %s; try again later.", registration.MaxLive, registration.UnusedTTL)
	}
	if err != nil {
		return storageError(err)
	}
	s.o.Log.Info("MCP client registered", s.logAttrs(r.Context(), event.MCPClientRegistered.Attr(),
		slog.String("client_id", c.ID), slog.String("client_name", redact.Truncate(strconv.Quote(c.Name), 120)),
		slog.String("application_type", c.ApplicationType))...)
	pages.JSON(w, http.StatusCreated, "no-store", registrationResponse{
		ClientID: c.ID, ClientIDIssuedAt: c.Created.Unix(), ClientName: c.Name, ClientURI: c.URI,
		RedirectURIs: c.RedirectURIs, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none", ApplicationType: c.ApplicationType,
	})
	return nil
}

// resolveClient finds an MCP client by id: a client the proxy registered,
// or a Client ID Metadata Document. selfRegistered tells the consent page
// that nobody vouches for the client.
func (s *Server) resolveClient(ctx context.Context, id string) (c *clientid.Client, selfRegistered bool, err error) {
	if !registration.IsRegisteredID(id) {
		c, err := s.o.Clients.Resolve(ctx, id)
		return c, false, err
	}
	if !s.registrationEnabled() {
		return nil, true, &clientid.Error{ClientID: id, Reason: "it was registered dynamically, and dynamic client registration is turned off on this proxy"}
	}
	rc, err := s.o.Registry.Get(ctx, s.route, id)
	if err != nil {
		return nil, true, storageError(err)
	}
	if rc == nil {
		return nil, true, &clientid.Error{ClientID: id, Reason: fmt.Sprintf("no such client is registered on this host (unused registrations expire after %d hours); remove the MCP client's saved registration so that it registers again", int(registration.UnusedTTL.Hours()))}
	}
	name := rc.Name
	if name == "" {
		name = "Unnamed MCP client"
	}
	return &clientid.Client{ID: rc.ID, Name: name, URI: rc.URI, RedirectURIs: rc.RedirectURIs}, true, nil
}

// registrationGone says why a registered client id may no longer get
// tokens (registration turned off, or the registration expired), or "".
func (s *Server) registrationGone(ctx context.Context, id string) (string, error) {
	if !registration.IsRegisteredID(id) {
		return "", nil
	}
	if !s.registrationEnabled() {
		return "the client was registered dynamically, and dynamic client registration is turned off on this proxy", nil
	}
	c, err := s.o.Registry.Get(ctx, s.route, id)
	if err != nil || c != nil {
		return "", err
	}
	return "no such client is registered on this host; the MCP client registers again", nil
}

// clientUsed extends the life of a registered client that gets tokens.
func (s *Server) clientUsed(ctx context.Context, id string) error {
	if s.registrationEnabled() && registration.IsRegisteredID(id) {
		return s.o.Registry.Used(ctx, s.route, id)
	}
	return nil
}

// redirectHost is the host of a redirect URI, for the consent page.
func redirectHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Host
}
