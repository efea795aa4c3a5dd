// Package clients are the two clients the official MCP conformance suite
// runs for each client scenario (cmd/mcp-conformance-client): the
// scenario through mcp-proxy on the in-process stack, and the plain MCP Go
// SDK client as the baseline.
package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// The environment the suite gives the client command (its README).
const (
	EnvScenario        = "MCP_CONFORMANCE_SCENARIO"
	EnvContext         = "MCP_CONFORMANCE_CONTEXT"
	EnvProtocolVersion = "MCP_CONFORMANCE_PROTOCOL_VERSION"
)

// Run is one invocation of the client command by the suite.
type Run struct {
	// ServerURL is the scenario's MCP server, the command's last argument.
	ServerURL string
	// Scenario names the scenario (MCP_CONFORMANCE_SCENARIO).
	Scenario string
	// Context is the scenario's extra data (MCP_CONFORMANCE_CONTEXT), such
	// as a pre-registered client.
	Context ScenarioContext
	// ProtocolVersion is the MCP protocol version to speak
	// (MCP_CONFORMANCE_PROTOCOL_VERSION).
	ProtocolVersion string
}

// ScenarioContext is the part of MCP_CONFORMANCE_CONTEXT a client auth
// scenario uses.
type ScenarioContext struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Issuer       string `json:"issuer"`
}

// RunFromEnv reads a Run from the command line's server URL and the
// suite's environment.
func RunFromEnv(serverURL string, getenv func(string) string) (Run, error) {
	r := Run{ServerURL: serverURL, Scenario: getenv(EnvScenario), ProtocolVersion: getenv(EnvProtocolVersion)}
	if c := getenv(EnvContext); c != "" {
		if err := json.Unmarshal([]byte(c), &r.Context); err != nil {
			return r, fmt.Errorf("%s: %w", EnvContext, err)
		}
	}
	if _, err := url.Parse(serverURL); err != nil || serverURL == "" {
		return r, fmt.Errorf("the server URL %q is not a URL", serverURL)
	}
	return r, nil
}

// The scenario servers' tool (every client auth scenario serves it).
const scenarioTool = "test-tool"

// fixedClientIDURL is the Client ID Metadata Document URL auth/basic-cimd
// expects a client to present: the suite's authorization server compares
// the client_id with it and fetches nothing.
const fixedClientIDURL = "https://conformance-test.local/client-metadata.json"

// directRedirectURL is where the plain client's authorization answers go:
// the browser stops there, nothing listens on it.
const directRedirectURL = "http://127.0.0.1:1/callback"

// callTool lists the tools and calls the scenario's tool in sess.
func callTool(ctx context.Context, sess *mcp.ClientSession) error {
	if _, err := sess.ListTools(ctx, nil); err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: scenarioTool, Arguments: map[string]any{}})
	if err != nil {
		return fmt.Errorf("tools/call %s: %w", scenarioTool, err)
	}
	if res.IsError {
		return fmt.Errorf("tools/call %s: the tool answered with an error: %s", scenarioTool, actors.ToolText(res))
	}
	return nil
}

// Direct runs the scenario with the plain MCP Go SDK client, no proxy in
// between: the baseline a client that is not an intermediary scores. The
// headless browser follows the suite's authorization server, which
// approves at once, to the redirect URL.
func Direct(ctx context.Context, r Run) error {
	b := browser.New(http.DefaultTransport, "", "")
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL: directRedirectURL,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			u, err := b.Navigate(ctx, args.URL, directRedirectURL)
			if err != nil {
				return nil, err
			}
			q := u.Query()
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization refused: %s: %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: fixedClientIDURL},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:   "mcp-proxy conformance baseline",
			RedirectURIs: []string{directRedirectURL},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
		}},
		RequestRefreshToken: true,
	}
	if r.Context.ClientID != "" {
		pre := &oauthex.ClientCredentials{ClientID: r.Context.ClientID, Issuer: r.Context.Issuer}
		if r.Context.ClientSecret != "" {
			pre.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: r.Context.ClientSecret}
		}
		cfg.PreregisteredClient = pre
		cfg.ClientIDMetadataDocumentConfig, cfg.DynamicClientRegistrationConfig = nil, nil
	}
	h, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		return err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-proxy-conformance-baseline", Version: "1.0.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: r.ServerURL, OAuthHandler: h},
		&mcp.ClientSessionOptions{ProtocolVersion: r.ProtocolVersion})
	if err != nil {
		return fmt.Errorf("connect %s: %w", r.ServerURL, err)
	}
	defer sess.Close()
	return callTool(ctx, sess)
}

// Proxied runs the scenario through mcp-proxy: the in-process stack runs
// the proxy with one route whose to is the scenario's server, and mockas
// as the identity provider; alice's MCP client (the SDK client with its
// Client ID Metadata Document at the stack's client host) signs in at the
// proxy and consents there, and her browser then follows the proxy to the
// scenario's authorization server, which approves at once, and back.
// log, when set, receives the proxy's log after the run.
func Proxied(ctx context.Context, r Run, log func(string)) (err error) {
	s, err := stack.NewLocal()
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() {
		if log != nil {
			log(s.ProxyLog())
		}
	}()
	u, _ := url.Parse(r.ServerURL)
	// The scenario's servers are on this machine under this name, the
	// authorization server on a port the proxy learns from the resource
	// metadata.
	s.TrustLoopbackHost(u.Hostname())
	cfg, err := ProxyConfig(r)
	if err != nil {
		return err
	}
	if err := s.WriteConfig(cfg); err != nil {
		return err
	}
	if err := s.StartProxy(ctx); err != nil {
		return err
	}
	const name = "conformance-client"
	c, err := actors.NewMCPClient(loopbackDirect{stackRT: s.Transport()}, "alice", name, s.ClientMetadataURL(name), s.ClientRedirectURL(name))
	if err != nil {
		return err
	}
	c.AskVersion = r.ProtocolVersion
	endpoint := "https://" + stack.ProxyHost + u.EscapedPath()
	if err := c.Connect(ctx, endpoint); err != nil {
		return err
	}
	defer c.Close()
	if err := callTool(ctx, c.Session()); err != nil {
		return fmt.Errorf("%w (browser: %s)", err, c.History())
	}
	if d := s.RefusedDials(); len(d) > 0 {
		return fmt.Errorf("the stack refused dials outside loopback: %s", strings.Join(d, "; "))
	}
	return nil
}

// ProxyConfig is the operator configuration of a proxied run: the Quick
// Start's, with the scenario's server as the route's to and, for the
// client, the scenario's pre-registered one as the route's upstream_oauth2
// (as an operator who registered the proxy would write it) when it has
// one, else dynamic client registration allowed (the suite's
// authorization servers register clients that way unless they accept
// Client ID Metadata Documents).
func ProxyConfig(r Run) (string, error) {
	u, err := url.Parse(r.ServerURL)
	if err != nil {
		return "", err
	}
	to := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	var b strings.Builder
	fmt.Fprintf(&b, `tls:
  cert_file: tls/mcp.example.com.crt
  key_file: tls/mcp.example.com.key

identity_provider:
  issuer: https://%s
  client_id: mcp-proxy
  client_secret: ${%s}

storage:
  type: memory

routes:
  - from: https://%s
    to: %s
    mcp:
      server:
`, stack.IdPHost, stack.IdPClientSecretEnv, stack.ProxyHost, to)
	if r.Context.ClientID == "" {
		b.WriteString("        dynamic_client_registration: true\n")
		return b.String(), nil
	}
	fmt.Fprintf(&b, "        upstream_oauth2:\n          client_id: %s\n", yamlString(r.Context.ClientID))
	if r.Context.ClientSecret != "" {
		fmt.Fprintf(&b, "          client_secret: %s\n", yamlString(r.Context.ClientSecret))
	}
	return b.String(), nil
}

func yamlString(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a YAML string
	return string(b)
}

// loopbackDirect sends requests for loopback hosts (the suite's servers,
// which the user's browser reaches when the proxy sends it to the
// scenario's authorization server) straight there, and everything else
// through the stack.
type loopbackDirect struct{ stackRT http.RoundTripper }

func (l loopbackDirect) RoundTrip(req *http.Request) (*http.Response, error) {
	if isLoopbackHost(req.URL.Hostname()) {
		return http.DefaultTransport.RoundTrip(req)
	}
	return l.stackRT.RoundTrip(req)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ErrUsage is returned for a bad command line.
var ErrUsage = errors.New("usage: mcp-conformance-client -mode proxy|direct <server-url>")
