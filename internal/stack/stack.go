// Package stack runs the conformance stack: the proxy under test between a
// mock MCP server guarded by a mock authorization server, an identity
// provider for user sign-in, and a host for MCP clients' metadata
// documents, all under the hostnames the docs use.
//
// Step definitions talk to the Stack interface only; they do not know
// whether the components run in this process or in containers.
package stack

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// The hostnames the docs use and what serves them.
const (
	ProxyHost    = "mcp.example.com"         // the route's from: mcp-proxy
	UpstreamHost = "remote-mcp.provider.com" // the route's to: mockmcp
	ASHost       = "auth.provider.com"       // the remote server's authorization server: mockas
	IdPHost      = "idp.example.com"         // the operator's identity provider: mockas
	ClientHost   = "client.example.net"      // MCP clients' metadata documents: the harness
)

// InnerProxyHost is the second route host of the docs' multi-hop example:
// another mcp-proxy route behind the first.
const InnerProxyHost = "mcp-internal.example.com"

// The clients registered for the proxy at the remote authorization server,
// as the Troubleshooting page's pre-registration examples name them.
const (
	UpstreamPublicClient       = "mcp-proxy-public"
	UpstreamConfidentialClient = "mcp-proxy-confidential"
	// UpstreamClientSecretEnv is the variable the confidential example
	// reads its secret from.
	UpstreamClientSecretEnv = "UPSTREAM_CLIENT_SECRET"
	// UpstreamClientSecret is that secret in the stack (a test value).
	UpstreamClientSecret = "upstream-secret-for-the-conformance-stack"
)

// UpstreamServiceClient is the client registered for the proxy at the
// remote authorization server with a public key, as the Token Binding
// page's client credentials example names it: it authenticates with
// private_key_jwt.
const UpstreamServiceClient = "mcp-proxy-service"

// UpstreamClients are the pre-registered clients of the remote
// authorization server: all redirect to the proxy's upstream callback;
// serviceKey is the public key of UpstreamServiceClient.
func UpstreamClients(serviceKey crypto.PublicKey) []mockas.Client {
	cb := []string{"https://" + ProxyHost + "/.mcp-proxy/upstream/callback"}
	return []mockas.Client{
		{ID: UpstreamPublicClient, Name: "mcp-proxy (public)", RedirectURIs: cb},
		{ID: UpstreamConfidentialClient, Secret: UpstreamClientSecret, Name: "mcp-proxy (confidential)", RedirectURIs: cb},
		{ID: UpstreamServiceClient, PublicKey: serviceKey, Name: "mcp-proxy (service account)", RedirectURIs: cb},
	}
}

// UpstreamResource is the remote MCP server's resource identifier.
const UpstreamResource = "https://" + UpstreamHost + "/mcp"

// IdPClientSecretEnv is the environment variable the docs' configurations
// read the identity provider's client secret from.
const IdPClientSecretEnv = "IDP_CLIENT_SECRET"

// Stack is one running set of components.
type Stack interface {
	// Mode names the stack: "local" (in-process) or "containers".
	Mode() string
	// Transport reaches every hostname of the stack over HTTPS with the
	// run's CA; actors (MCP clients, browsers) use it.
	Transport() http.RoundTripper

	// WriteConfig puts an operator configuration into the proxy's working
	// directory as config.yaml, with the files it names (certificates).
	WriteConfig(yaml string) error
	// WriteFile writes a file the operator keeps beside the configuration
	// (such as a claims file for mcp-proxy policy check).
	WriteFile(name string, data []byte) error
	// StartProxy runs `mcp-proxy serve -config config.yaml` with the
	// stack's documented trust flags, and waits until it serves.
	StartProxy(ctx context.Context) error
	// RunProxy runs another mcp-proxy command in the working directory.
	RunProxy(ctx context.Context, args ...string) (stdout, stderr string, exit int)
	// ProxyLog returns what the proxy has logged so far.
	ProxyLog() string

	// AS, IdP and MCP read the doubles' control APIs.
	AS() *control.Client
	IdP() *control.Client
	MCP() *control.Client

	// ClientMetadataURL and ClientRedirectURL are the metadata document and
	// redirect URI of an MCP client called name, published at ClientHost.
	ClientMetadataURL(name string) string
	ClientRedirectURL(name string) string
	// ClientSigningKey is the private key a private_key_jwt MCP client
	// called name signs its client assertions with; client.example.net
	// publishes its public half.
	ClientSigningKey(name string) (*ecdsa.PrivateKey, error)
	// RotateClientKey rotates the key that the private_key_jwt MCP client
	// called name publishes and returns the new key and its key id.
	RotateClientKey(ctx context.Context, name string) (*ecdsa.PrivateKey, string, error)

	// RefusedDials lists every attempt to connect outside the stack: a
	// scenario fails when there is one.
	RefusedDials() []string

	// CACertPEM is the run's test CA certificate, for clients that are not
	// Go programs (NODE_EXTRA_CA_CERTS).
	CACertPEM() []byte
	// DialContext connects to a name of the stack (host:port) as Transport
	// does; names the stack does not know are refused and recorded.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)

	// Faults. A service is named by the hostname it serves (Names);
	// ProxyHost names the proxy. Each operation returns an error wrapping
	// ErrNeedsContainers where a stack cannot perform it faithfully.
	//
	// StopService stops the service as a stopped process: connections to it
	// are refused until StartService.
	StopService(ctx context.Context, name string) error
	// StartService starts a stopped service again: a new process with the
	// same settings, which has forgotten what it held in memory (a mock
	// server's grants and signing keys). The proxy keeps its working
	// directory, so a file store survives.
	StartService(ctx context.Context, name string) error
	// PauseService freezes the service as a paused process: connections
	// are still accepted by the kernel, but nothing is read or answered
	// until UnpauseService.
	PauseService(ctx context.Context, name string) error
	// UnpauseService lets a paused service go on where it stopped.
	UnpauseService(ctx context.Context, name string) error
	// RestartService stops and starts the service.
	RestartService(ctx context.Context, name string) error
	// RestartProxy stops the proxy and starts it again with the same
	// configuration and working directory (RestartService(ctx, ProxyHost)).
	RestartProxy(ctx context.Context) error

	// Close stops everything and removes what the stack created.
	Close() error
}

// ErrNeedsContainers is wrapped by the errors of operations that only the
// container stack can perform faithfully.
var ErrNeedsContainers = errors.New("this needs the container stack (STACK=containers)")

// ErrUnknownService is wrapped when a fault names no service of the stack.
var ErrUnknownService = errors.New("no service of the stack has this name")

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
