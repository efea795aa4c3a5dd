// Package actors are the people and programs around the proxy in a
// scenario or a demo: a user with a browser and an MCP client. The MCP
// client is the official MCP Go SDK client with its OAuth handler
// (auth.NewAuthorizationCodeHandler); the handler opens the user's headless
// browser, which signs in and consents as a person would. A client may be
// public or, as ChatGPT's connectors are, authenticate with
// private_key_jwt (Assertions).
package actors

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// Passwords are the mock servers' default accounts (mockas.DefaultUsers).
var Passwords = map[string]string{"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

// MCPClient is a user with an MCP client.
type MCPClient struct {
	User string
	// Name is the MCP client's name; it picks its metadata document.
	Name    string
	Browser *browser.Browser

	metadataURL, redirectURL string
	clientID                 string // the registered client id (dynamic registration)
	transport                http.RoundTripper
	handler                  *auth.AuthorizationCodeHandler
	session                  *mcp.ClientSession
	// authorizations counts the times the OAuth handler sent the user's
	// browser to authorize.
	authorizations atomic.Int64

	// PageError is the last page the user's browser could not get past.
	PageError *browser.PageError
	// StopAt, when set, makes the browser stop at the first URL with this
	// prefix during authorization, which then fails; Stopped is that URL.
	StopAt  string
	Stopped string
	// Scopes, when set, are the scopes the MCP client asks for, whatever
	// the server advertises.
	Scopes []string
	// AskVersion, when set, is the MCP protocol version the client
	// asks for; empty means the SDK's latest.
	AskVersion string
	// Assertions, for a client that authenticates with private_key_jwt,
	// signs its token requests; nil for a public client.
	Assertions *Assertions
}

// NewRegisteringMCPClient returns user's MCP client called name that has no
// metadata document and registers itself at the authorization server
// (RFC 7591) with redirectURL as its one redirect URI.
func NewRegisteringMCPClient(transport http.RoundTripper, user, name, redirectURL string) (*MCPClient, error) {
	return NewMCPClient(transport, user, name, "", redirectURL)
}

// ClientID is the client id the MCP client was registered under, once it
// has authorized through dynamic registration; "" otherwise.
func (c *MCPClient) ClientID() string { return c.clientID }

// ErrStopped is the authorization failure of a browser told to stop.
var ErrStopped = errors.New("the browser stopped where it was told to")

// NewMCPClient returns user's MCP client called name, whose Client ID
// Metadata Document is at metadataURL and whose redirect URI is
// redirectURL. transport reaches every host involved.
func NewMCPClient(transport http.RoundTripper, user, name, metadataURL, redirectURL string) (*MCPClient, error) {
	pw, ok := Passwords[user]
	if !ok {
		return nil, fmt.Errorf("no account named %q at the mock servers", user)
	}
	return NewMCPClientWithPassword(transport, user, pw, name, metadataURL, redirectURL), nil
}

// NewMCPClientWithPassword is NewMCPClient for an account that is not one
// of the defaults (a mock server configured with generated users, as the
// load test's are): the browser signs in with password.
func NewMCPClientWithPassword(transport http.RoundTripper, user, pw, name, metadataURL, redirectURL string) *MCPClient {
	return &MCPClient{
		User: user, Name: name, Browser: browser.New(transport, user, pw),
		metadataURL: metadataURL, redirectURL: redirectURL, transport: transport,
	}
}

// NewPrivateKeyJWTClient returns user's MCP client called name that
// authenticates at token endpoints with client assertions (RFC 7523)
// signed with key, whose public half its metadata document publishes, as
// ChatGPT's connectors do.
func NewPrivateKeyJWTClient(transport http.RoundTripper, user, name, metadataURL, redirectURL string, key *ecdsa.PrivateKey, keyID string) (*MCPClient, error) {
	c, err := NewMCPClient(transport, user, name, metadataURL, redirectURL)
	if err != nil {
		return nil, err
	}
	c.Assertions = &Assertions{ClientID: metadataURL, Key: key, KeyID: keyID, Base: transport}
	return c, nil
}

// tokenClient is the HTTP client of the OAuth handler: it signs token
// requests for a private_key_jwt client.
func (c *MCPClient) tokenClient() *http.Client {
	if c.Assertions != nil {
		return &http.Client{Transport: c.Assertions}
	}
	return &http.Client{Transport: c.transport}
}

// Refresh refreshes the client's token now, at the token endpoint it got
// it from, authenticating as it did then.
func (c *MCPClient) Refresh(ctx context.Context) error {
	if c.handler == nil || c.Assertions == nil || c.Assertions.TokenURL() == "" {
		return fmt.Errorf("%s's MCP client has no token from a private_key_jwt exchange to refresh", c.User)
	}
	ts, err := c.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return fmt.Errorf("%s's MCP client has no token: %v", c.User, err)
	}
	tok, err := ts.Token()
	if err != nil {
		return err
	}
	cfg := &oauth2.Config{ClientID: c.metadataURL, Endpoint: oauth2.Endpoint{TokenURL: c.Assertions.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.tokenClient())
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	return err
}

// Connect opens an MCP session with endpoint, running the OAuth flow when
// the server asks for it.
func (c *MCPClient) Connect(ctx context.Context, endpoint string) error {
	h, err := c.newHandler()
	if err != nil {
		return err
	}
	c.handler = h
	return c.connect(ctx, endpoint)
}

// Authorize runs the OAuth flow for endpoint without opening an MCP
// session: a first POST without a token, whose 401 challenge the SDK's
// handler follows (the user's browser signs in and consents), so that the
// client holds a token (Token) and the MCP server has seen nothing but
// what its proxy sent while authorizing.
func (c *MCPClient) Authorize(ctx context.Context, endpoint string) error {
	h, err := c.newHandler()
	if err != nil {
		return err
	}
	c.handler = h
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Transport: c.transport}).Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%s answered %s to a request without a token, not 401", endpoint, resp.Status)
	}
	if err := h.Authorize(ctx, req, resp); err != nil {
		return fmt.Errorf("%s's MCP client could not authorize at %s: %w (browser: %s)", c.User, endpoint, err, c.History())
	}
	return nil
}

// newHandler is the client's OAuth handler: the SDK's authorization code
// handler with the client's metadata document (or registration), whose
// browser is the user's.
func (c *MCPClient) newHandler() (*auth.AuthorizationCodeHandler, error) {
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL: c.redirectURL,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			c.authorizations.Add(1)
			stop := c.redirectURL
			if c.StopAt != "" {
				stop = c.StopAt
			}
			u, err := c.Browser.Navigate(ctx, args.URL, stop)
			if err == nil && c.StopAt != "" {
				c.Stopped = u.String()
				return nil, ErrStopped
			}
			if err != nil {
				var pe *browser.PageError
				if errors.As(err, &pe) {
					c.PageError = pe
				}
				return nil, err
			}
			if id, err := url.Parse(args.URL); err == nil {
				c.clientID = id.Query().Get("client_id")
			}
			q := u.Query()
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization refused: %s: %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		Client: c.tokenClient(),
	}
	if c.metadataURL != "" {
		cfg.ClientIDMetadataDocumentConfig = &auth.ClientIDMetadataDocumentConfig{URL: c.metadataURL}
	} else {
		cfg.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: c.Name, RedirectURIs: []string{c.redirectURL}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}}
	}
	if c.Scopes != nil {
		cfg.ScopeFilter = func([]string) []string { return c.Scopes }
	}
	return auth.NewAuthorizationCodeHandler(cfg)
}

// Reconnect opens a new MCP session with endpoint, keeping the tokens the
// client holds (as a client whose session the server forgot would); only a
// token the proxy refuses sends the user's browser to authorize again.
func (c *MCPClient) Reconnect(ctx context.Context, endpoint string) error {
	if c.handler == nil {
		return c.Connect(ctx, endpoint)
	}
	c.Close()
	return c.connect(ctx, endpoint)
}

// Authorizations is how many times the user's browser was sent to
// authorize, over every Connect and Reconnect.
func (c *MCPClient) Authorizations() int64 { return c.authorizations.Load() }

func (c *MCPClient) connect(ctx context.Context, endpoint string) error {
	client := mcp.NewClient(&mcp.Implementation{Name: c.Name, Version: "1.0.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     endpoint,
		HTTPClient:   &http.Client{Transport: traceparentTransport{c.transport}},
		OAuthHandler: c.handler,
		// The SDK's default retries: a stream broken by a restarted proxy is
		// resumed, as a real client would.
	}, &mcp.ClientSessionOptions{ProtocolVersion: c.AskVersion})
	if err != nil {
		return fmt.Errorf("%s's MCP client could not connect to %s: %w (browser: %s)", c.User, endpoint, err, c.History())
	}
	c.session = sess
	return nil
}

type traceparentKey struct{}

// WithTraceparent returns ctx whose MCP requests carry the W3C traceparent
// header tp, as an MCP client instrumented with OpenTelemetry sends the
// trace its call belongs to.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceparentKey{}, tp)
}

// traceparentTransport adds the traceparent of a request's context.
type traceparentTransport struct{ base http.RoundTripper }

func (t traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tp, ok := r.Context().Value(traceparentKey{}).(string); ok {
		r = r.Clone(r.Context())
		r.Header.Set("Traceparent", tp)
	}
	return t.base.RoundTrip(r)
}

// Token returns the access token the MCP client holds (issued by the
// proxy), for a scenario that sends a request by hand.
func (c *MCPClient) Token(ctx context.Context) (string, error) {
	if c.handler == nil {
		return "", fmt.Errorf("%s's MCP client never authorized", c.User)
	}
	ts, err := c.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", fmt.Errorf("%s's MCP client has no token: %v", c.User, err)
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// RefreshToken returns the refresh token the MCP client holds (issued by
// the proxy), for a refresh sent by hand.
func (c *MCPClient) RefreshToken(ctx context.Context) (string, error) {
	if c.handler == nil {
		return "", fmt.Errorf("%s's MCP client never authorized", c.User)
	}
	ts, err := c.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", fmt.Errorf("%s's MCP client has no token: %v", c.User, err)
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.RefreshToken, nil
}

// SessionID is the MCP session id of the connection, and ProtocolVersion
// the negotiated protocol version, for requests sent by hand.
func (c *MCPClient) SessionID() string {
	if c.session == nil {
		return ""
	}
	return c.session.ID()
}

// ProtocolVersion is the negotiated MCP protocol version.
func (c *MCPClient) ProtocolVersion() string {
	if c.session == nil || c.session.InitializeResult() == nil {
		return ""
	}
	return c.session.InitializeResult().ProtocolVersion
}

// Session is the MCP session, once connected.
func (c *MCPClient) Session() *mcp.ClientSession { return c.session }

// RedirectURL is where the MCP client receives authorization answers.
func (c *MCPClient) RedirectURL() string { return c.redirectURL }

// Call calls a tool.
func (c *MCPClient) Call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	if c.session == nil {
		return nil, fmt.Errorf("%s's MCP client is not connected", c.User)
	}
	res, err := c.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("tools/call %s: %w", tool, err)
	}
	return res, nil
}

// TokenFingerprint is the fingerprint of the access token the MCP client
// holds.
func (c *MCPClient) TokenFingerprint(ctx context.Context) (string, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return "", err
	}
	return control.Fingerprint(tok), nil
}

// History describes the pages the user's browser went through.
func (c *MCPClient) History() string {
	var b strings.Builder
	for _, v := range c.Browser.Visits() {
		fmt.Fprintf(&b, "\n  %s %s%s → %d %s", v.Method, v.URL.Host, v.URL.Path, v.Status, v.Action)
	}
	return b.String()
}

// Close ends the MCP session.
func (c *MCPClient) Close() {
	if c.session != nil {
		_ = c.session.Close()
		c.session = nil
	}
}

// ToolText joins the text content of a tool result.
func ToolText(r *mcp.CallToolResult) string {
	var parts []string
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, "\n")
}
