package stack

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/idp"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockas"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// shared is what both stacks hold the same way: the run's CA, the host map
// and transport the harness reaches the stack's names through, the proxy's
// working directory, and the doubles' secrets.
type shared struct {
	ca        *testca.CA
	hosts     *hostmap.Map
	transport *http.Transport
	dir       string // the proxy's working directory
	secret    string // the control API secret
	idpSecret string
	// keySeed derives the MCP clients' signing keys (clientmeta.SigningKey).
	keySeed string
	// rotations counts each client's key rotations (RotateClientKey).
	rotations map[string]int
}

func newShared(ca *testca.CA, dir string) shared {
	hosts := hostmap.New()
	return shared{
		rotations: map[string]int{},
		ca:        ca,
		hosts:     hosts,
		transport: netguard.NewTransport(hosts.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()}),
		dir:       dir,
		secret:    "control-" + randomHex(),
		idpSecret: "idp-secret-" + randomHex(),
		keySeed:   randomHex(),
	}
}

// asSettings are the remote authorization server's settings in the stack:
// it fetches the stack's Client ID Metadata Documents, and has the
// clients the Troubleshooting and Token Binding pages' pre-registration
// examples name.
func (sh *shared) asSettings() (mockas.Config, error) {
	key, err := sh.serviceKey()
	if err != nil {
		return mockas.Config{}, err
	}
	wk, err := sh.workloadKey()
	if err != nil {
		return mockas.Config{}, err
	}
	jk, err := sh.idjagKey()
	if err != nil {
		return mockas.Config{}, err
	}
	return mockas.Config{
		Issuer: "https://" + ASHost,
		// The routes' documents, and the MCP clients' at ClientHost for a
		// client that uses this server without the proxy (the official
		// suite's authorization baseline).
		TrustedHosts: []string{ProxyHost, InnerProxyHost, ClientHost},
		Clients:      UpstreamClients(key.Public()),
		// The cluster the proxy's workload runs in: its service account
		// tokens are JWT bearer grants here.
		WorkloadIssuers: []mockas.WorkloadIssuer{{Issuer: WorkloadIssuer, PublicKey: wk.Public()}},
		// The operator's identity provider is the enterprise's: its
		// ID-JAGs are JWT bearer grants here (enterprise routes).
		IDJAGIssuers: []mockas.WorkloadIssuer{{Issuer: "https://" + IdPHost, PublicKey: jk.Public()}},
	}, nil
}

// EnterpriseUsers are the users the stack's identity provider vouches for
// at the remote authorization server (enterprise-managed authorization):
// alice; bob is refused, as a user the enterprise has not given the server.
var EnterpriseUsers = []string{"alice"}

// idjagKey signs the stack's identity provider's ID-JAGs: derived from the
// run's seed, so the remote authorization server (in process or in a
// container) knows it.
func (sh *shared) idjagKey() (*ecdsa.PrivateKey, error) {
	return clientmeta.SigningKey(sh.keySeed, "id-jag https://"+IdPHost)
}

// WorkloadIssuer is the issuer of the stack's workload tokens: the
// Kubernetes cluster the proxy would run in, whose service account tokens
// the remote authorization server trusts.
const WorkloadIssuer = "https://oidc.cluster.example.com"

// WorkloadSubject is the subject of the stack's workload tokens: the
// proxy's Kubernetes service account.
const WorkloadSubject = "system:serviceaccount:mcp:mcp-proxy"

// workloadKey signs the stack's workload tokens: derived from the run's
// seed, so the remote authorization server (in process or in a container)
// and the tokens the harness writes agree.
func (sh *shared) workloadKey() (*ecdsa.PrivateKey, error) {
	return clientmeta.SigningKey(sh.keySeed, "workload "+WorkloadIssuer)
}

// WorkloadToken is a workload JWT of the stack's cluster (iss
// WorkloadIssuer, sub WorkloadSubject) for audience, expiring at expiry,
// as a projected service account token is.
func (sh *shared) WorkloadToken(audience string, expiry time.Time) (string, error) {
	key, err := sh.workloadKey()
	if err != nil {
		return "", err
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	iat := now
	if expiry.Before(now) {
		iat = expiry.Add(-time.Hour)
	}
	return jwt.Signed(sig).Claims(jwt.Claims{Issuer: WorkloadIssuer, Subject: WorkloadSubject, Audience: jwt.Audience{audience},
		Expiry: jwt.NewNumericDate(expiry), IssuedAt: jwt.NewNumericDate(iat), ID: randomHex()}).Serialize()
}

// serviceKey is the private key of UpstreamServiceClient: derived from the
// run's seed as the MCP clients' keys are, so the remote authorization
// server (in process or in a container) and the proxy's key file agree.
func (sh *shared) serviceKey() (*ecdsa.PrivateKey, error) {
	return clientmeta.SigningKey(sh.keySeed, "upstream "+UpstreamServiceClient)
}

// idpSettings are the identity provider's settings in the stack: the
// proxy's client, with the sign-in redirect of every route host the docs
// use, and of the other route origins given (https://localhost:24443).
func (sh *shared) idpSettings(origins ...string) mockas.Config {
	hosts := []string{ProxyHost, InnerProxyHost}
	for _, o := range origins {
		hosts = append(hosts, strings.TrimPrefix(o, "https://"))
	}
	cfg := idp.Config(IdPHost, sh.idpSecret, hosts...)
	if k, err := sh.idjagKey(); err == nil {
		// The enterprise has connected the remote authorization server,
		// where the proxy's client for enterprise access is the
		// confidential one, for EnterpriseUsers.
		cfg.IDJAG = &mockas.IDJAGIssuing{Key: k, Access: []mockas.IDJAGAccess{
			{Audience: "https://" + ASHost, ClientID: UpstreamConfidentialClient, Users: EnterpriseUsers}}}
	}
	return cfg
}

// CACertPEM implements Stack.
func (sh *shared) CACertPEM() []byte { return sh.ca.CertPEM() }

// DialContext implements Stack.
func (sh *shared) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return sh.hosts.DialContext(ctx, network, addr)
}

// Transport implements Stack.
func (sh *shared) Transport() http.RoundTripper { return sh.transport }

// ClientMetadataURL implements Stack.
func (sh *shared) ClientMetadataURL(name string) string {
	return clientmeta.MetadataURL(ClientHost, name)
}

// ClientRedirectURL implements Stack.
func (sh *shared) ClientRedirectURL(name string) string {
	return clientmeta.RedirectURL(ClientHost, name)
}

// ClientSigningKey implements Stack.
func (sh *shared) ClientSigningKey(name string) (*ecdsa.PrivateKey, error) {
	return clientmeta.SigningKey(sh.keySeed, name)
}

// RotateClientKey implements Stack: client.example.net publishes the next
// key from now on.
func (sh *shared) RotateClientKey(ctx context.Context, name string) (*ecdsa.PrivateKey, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ClientHost+"/"+name+"/rotate", nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Transport: sh.transport, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, "", fmt.Errorf("rotating the key of %s: %s", name, resp.Status)
	}
	sh.rotations[name]++
	return clientmeta.RotatedKey(sh.keySeed, name, sh.rotations[name])
}

func (sh *shared) control(host string) *control.Client {
	return &control.Client{BaseURL: "https://" + host, Secret: sh.secret, HTTP: &http.Client{Transport: sh.transport, Timeout: 10 * time.Second}}
}

// AS implements Stack.
func (sh *shared) AS() *control.Client { return sh.control(ASHost) }

// IdP implements Stack.
func (sh *shared) IdP() *control.Client { return sh.control(IdPHost) }

// MCP implements Stack.
func (sh *shared) MCP() *control.Client { return sh.control(UpstreamHost) }
