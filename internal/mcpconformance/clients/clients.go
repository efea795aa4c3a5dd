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
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

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
	// ExchangeURL is where an enterprise route exchanges ID tokens in a
	// proxied run: the harness's subject token adapter (exchange.go) in
	// front of the scenario's identity provider.
	ExchangeURL string
}

// ScenarioContext is the part of MCP_CONFORMANCE_CONTEXT a client auth
// scenario uses: a pre-registered client, with a secret or, for
// auth/client-credentials-jwt, a private key.
type ScenarioContext struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Issuer       string `json:"issuer"`
	// PrivateKeyPEM is a PKCS #8 key to sign client assertions with, and
	// SigningAlgorithm their algorithm (ES256).
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	// ValidJWT is auth/wif-jwt-bearer's workload token: what a workload
	// identity route's token file holds. (The scenario's
	// wrong_audience_jwt and expired_jwt are for clients that test their
	// own refusals; the proxy's are tested against mockas.)
	ValidJWT string `json:"valid_jwt"`
	// The enterprise identity provider of
	// auth/enterprise-managed-authorization: the proxy's client there, the
	// ID token it accepts (its own, for demo-user@example.com), its issuer
	// and its token endpoint.
	IdPClientID      string `json:"idp_client_id"`
	IdPIDToken       string `json:"idp_id_token"`
	IdPIssuer        string `json:"idp_issuer"`
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
}

// Auth reports whether a scenario is a client auth scenario (auth/...),
// which the harness's own clients run; the suite's other client scenarios
// run the MCP Go SDK's everything-client.
func Auth(scenario string) bool { return strings.HasPrefix(scenario, "auth/") }

// ClientCredentials reports whether a scenario is one of the client
// credentials extension's, which a service_account route runs.
func ClientCredentials(scenario string) bool {
	return strings.HasPrefix(scenario, "auth/client-credentials-")
}

// Workload reports whether a scenario is the workload identity
// extension's (SEP-1933), which a workload identity route runs.
func Workload(scenario string) bool { return scenario == "auth/wif-jwt-bearer" }

// Enterprise reports whether a scenario is the enterprise-managed
// authorization extension's (SEP-990), which an enterprise route runs.
func Enterprise(scenario string) bool { return scenario == "auth/enterprise-managed-authorization" }

// ServiceAccount reports whether a scenario runs through a
// service_account route: the route's own token, with no user's consent.
func ServiceAccount(scenario string) bool { return ClientCredentials(scenario) || Workload(scenario) }

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

// Direct runs the scenario without a proxy in between: the baseline a
// client that is not an intermediary scores. An auth scenario runs the
// plain MCP Go SDK client, whose headless browser follows the suite's
// authorization server, which approves at once, to the redirect URL; any
// other runs everythingClient, the MCP Go SDK's conformance client, with
// the suite's environment.
func Direct(ctx context.Context, r Run, everythingClient string) error {
	if !Auth(r.Scenario) {
		return runEverythingClient(ctx, everythingClient, r.ServerURL)
	}
	if ServiceAccount(r.Scenario) || Enterprise(r.Scenario) {
		return fmt.Errorf("%s: the MCP Go SDK client has neither the client credentials nor the JWT bearer grant nor enterprise-managed authorization (its conformance baseline lists the scenario): nothing to run", r.Scenario)
	}
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

// runEverythingClient runs the MCP Go SDK's conformance client against
// serverURL; it reads the scenario from the environment the suite set,
// which it inherits.
func runEverythingClient(ctx context.Context, bin, serverURL string) error {
	if bin == "" {
		return errors.New("no everything-client binary (make mcp-conformance builds it)")
	}
	cmd := exec.CommandContext(ctx, bin, serverURL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(bin), serverURL, err)
	}
	return nil
}

// Proxied runs the scenario through mcp-proxy: the in-process stack runs
// the proxy with one route whose to is the scenario's server, and mockas
// as the identity provider; alice's MCP client (the SDK client with its
// Client ID Metadata Document at the stack's client host) signs in at the
// proxy and consents there. In an auth scenario her browser then follows
// the proxy to the scenario's authorization server, which approves at
// once, and back (or, for the client credentials scenarios, the proxy gets
// the route's shared token itself), and her MCP client calls the
// scenario's tool. In any other scenario, once she holds the proxy's
// token, everythingClient (the MCP Go SDK's conformance client, the same
// client the baseline runs) runs the scenario through the route, its
// requests carrying her token. log, when set, receives the proxy's log
// after the run.
func Proxied(ctx context.Context, r Run, everythingClient string, log func(string)) (err error) {
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
	keyDir, err := os.MkdirTemp("", "mcp-conformance-key-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keyDir)
	if Enterprise(r.Scenario) {
		a, err := startExchangeAdapter(r.Context.IdPTokenEndpoint, r.Context.IdPIDToken)
		if err != nil {
			return err
		}
		defer a.Close()
		r.ExchangeURL = a.URL
	}
	cfg, err := ProxyConfig(r, keyDir)
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
	if Auth(r.Scenario) {
		if err := c.Connect(ctx, endpoint); err != nil {
			return err
		}
		defer c.Close()
		if err := callTool(ctx, c.Session()); err != nil {
			return fmt.Errorf("%w (browser: %s)", err, c.History())
		}
	} else {
		if err := c.Authorize(ctx, endpoint); err != nil {
			return err
		}
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		fwd, err := forward(s.Transport(), "https://"+stack.ProxyHost, tok)
		if err != nil {
			return err
		}
		defer fwd.Close()
		if err := runEverythingClient(ctx, everythingClient, "http://"+fwd.Addr+u.EscapedPath()); err != nil {
			return err
		}
	}
	if d := s.RefusedDials(); len(d) > 0 {
		return fmt.Errorf("the stack refused dials outside loopback: %s", strings.Join(d, "; "))
	}
	return nil
}

// forwarder is a loopback listener that passes every request on to a
// route of the proxy with an MCP client's token: the suite's clients
// cannot be given one.
type forwarder struct {
	Addr string
	srv  *http.Server
}

func (f *forwarder) Close() error { return f.srv.Close() }

// forward starts a forwarder to origin (https://mcp.example.com) through
// transport that adds token as the bearer and changes nothing else but
// the Host; event streams are passed on as they come.
func forward(transport http.RoundTripper, origin, token string) (*forwarder, error) {
	target, err := url.Parse(origin)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+token)
		},
		Transport:     transport,
		FlushInterval: -1,
	}
	f := &forwarder{Addr: ln.Addr().String(), srv: &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}}
	go f.srv.Serve(ln)
	return f, nil
}

// ProxyConfig is the operator configuration of a proxied run: the Quick
// Start's, with the scenario's server as the route's to and, for the
// client, the scenario's pre-registered one as the route's upstream_oauth2
// (as an operator who registered the proxy would write it) when it has
// one, else dynamic client registration allowed (the suite's
// authorization servers register clients that way unless they accept
// Client ID Metadata Documents). A client credentials scenario's route is
// a service_account route that gets its token with the client credentials
// grant, with the scenario's secret or its private key, which is written
// to keyDir; the workload identity scenario's is one whose token file, in
// keyDir, holds the scenario's valid workload JWT, with its client id as
// the public client's. A scenario without auth has a route without options: its
// server needs no authorization.
func ProxyConfig(r Run, keyDir string) (string, error) {
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
%s
routes:
  - from: https://%s
    to: %s
    mcp:
      server:
`, stack.IdPHost, stack.IdPClientSecretEnv, auditFor(r), stack.ProxyHost, to)
	switch {
	case !Auth(r.Scenario):
		return strings.TrimSuffix(b.String(), "\n") + " {}\n", nil
	case r.Context.ClientID == "":
		b.WriteString("        dynamic_client_registration: true\n")
		return b.String(), nil
	case Workload(r.Scenario):
		token := filepath.Join(keyDir, "workload-token")
		if err := os.WriteFile(token, []byte(r.Context.ValidJWT), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "        upstream_token_binding: service_account\n        service_account:\n          workload_identity:\n            token_file: %s\n", yamlString(token))
	case Enterprise(r.Scenario):
		fmt.Fprintf(&b, "        enterprise:\n          token_endpoint: %s\n          client_id: %s\n", yamlString(r.ExchangeURL), yamlString(r.Context.IdPClientID))
	case ClientCredentials(r.Scenario):
		b.WriteString("        upstream_token_binding: service_account\n        service_account:\n          client_credentials: true\n")
	}
	fmt.Fprintf(&b, "        upstream_oauth2:\n          client_id: %s\n", yamlString(r.Context.ClientID))
	if r.Context.ClientSecret != "" {
		fmt.Fprintf(&b, "          client_secret: %s\n", yamlString(r.Context.ClientSecret))
	}
	if r.Context.PrivateKeyPEM != "" {
		if alg := r.Context.SigningAlgorithm; alg != "" && alg != "ES256" {
			return "", fmt.Errorf("the scenario signs with %s; the proxy signs client assertions with an EC P-256 key (ES256) or RSA (RS256), and its key decides", alg)
		}
		key := filepath.Join(keyDir, "client-key.pem")
		if err := os.WriteFile(key, []byte(r.Context.PrivateKeyPEM), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "          private_key_file: %s\n", yamlString(key))
	}
	return b.String(), nil
}

// auditFor is the audit block of a scenario's configuration: a
// service_account route must audit every use.
func auditFor(r Run) string {
	if ServiceAccount(r.Scenario) {
		return "\naudit:\n  file: audit.log\n"
	}
	return ""
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
var ErrUsage = errors.New("usage: mcp-conformance-client -mode proxy|direct [-everything-client PATH] <server-url>")
