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
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// The hostnames the docs use and what serves them.
const (
	ProxyHost    = "mcp.example.com"         // the route's from: mcp-proxy
	UpstreamHost = "remote-mcp.provider.com" // the route's to: mockmcp
	ASHost       = "auth.provider.com"       // the remote server's authorization server: mockas
	IdPHost      = "idp.example.com"         // the operator's identity provider: mockas
	ClientHost   = "client.example.net"      // MCP clients' metadata documents: the harness
)

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

	// RefusedDials lists every attempt to connect outside the stack: a
	// scenario fails when there is one.
	RefusedDials() []string

	// Close stops everything and removes what the stack created.
	Close() error
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
