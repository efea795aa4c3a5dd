package clients

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
)

func TestProxyConfig(t *testing.T) {
	dcr, err := ProxyConfig(Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/metadata-default"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dcr, "    to: http://localhost:4000\n") || !strings.Contains(dcr, "dynamic_client_registration: true") || strings.Contains(dcr, "upstream_oauth2") {
		t.Errorf("without a pre-registered client:\n%s", dcr)
	}
	pre, err := ProxyConfig(Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/pre-registration", Context: ScenarioContext{ClientID: "pre", ClientSecret: "s#1"}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pre, `client_id: "pre"`) || !strings.Contains(pre, `client_secret: "s#1"`) || strings.Contains(pre, "dynamic_client_registration") {
		t.Errorf("with a pre-registered client:\n%s", pre)
	}
}

// TestProxyConfigLoads: the configuration of each kind of scenario is one
// the proxy accepts: a route without options for a scenario without auth,
// and for the client credentials scenarios a service_account route with
// an audit log and the scenario's secret or key (written where the
// configuration says).
func TestProxyConfigLoads(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	for _, tc := range []struct {
		run  Run
		want []string
	}{
		{Run{ServerURL: "http://localhost:4000/mcp", Scenario: "http-standard-headers"}, []string{"      server: {}\n"}},
		{Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/client-credentials-basic", Context: ScenarioContext{ClientID: "cc", ClientSecret: "s"}},
			[]string{"upstream_token_binding: service_account", "client_credentials: true", `client_secret: "s"`, "audit:\n  file: audit.log"}},
		{Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/client-credentials-jwt", Context: ScenarioContext{ClientID: "cc", PrivateKeyPEM: keyPEM, SigningAlgorithm: "ES256"}},
			[]string{"upstream_token_binding: service_account", "private_key_file: "}},
		{Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/wif-jwt-bearer", Context: ScenarioContext{ClientID: "conformance-wif-workload", ValidJWT: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln"}},
			[]string{"upstream_token_binding: service_account", "workload_identity:\n            token_file: ", `client_id: "conformance-wif-workload"`, "audit:\n  file: audit.log"}},
		{Run{ServerURL: "http://localhost:4000/mcp", Scenario: "auth/enterprise-managed-authorization", ExchangeURL: "http://127.0.0.1:4001/token",
			Context: ScenarioContext{ClientID: "conformance-test-xaa-client", ClientSecret: "s", IdPClientID: "conformance-test-idp-client"}},
			[]string{"enterprise:\n          token_endpoint: \"http://127.0.0.1:4001/token\"\n          client_id: \"conformance-test-idp-client\"", `client_id: "conformance-test-xaa-client"`, `client_secret: "s"`}},
	} {
		t.Run(tc.run.Scenario, func(t *testing.T) {
			dir := t.TempDir()
			src, err := ProxyConfig(tc.run, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(src, w) {
					t.Errorf("the configuration lacks %q:\n%s", w, src)
				}
			}
			for _, f := range []string{"tls/mcp.example.com.crt", "tls/mcp.example.com.key"} {
				if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// The configuration's ${VAR} references get a value; the
			// OTEL_* variables, which the proxy reads unasked, are unset
			// as in an environment that sets none.
			env := func(k string) (string, bool) {
				if strings.HasPrefix(k, "OTEL_") {
					return "", false
				}
				return "x", true
			}
			cfg, err := config.Load(filepath.Join(dir, "config.yaml"), []byte(src), env)
			if err != nil {
				t.Fatalf("the proxy refuses the configuration: %v\n%s", err, src)
			}
			if tc.run.Context.PrivateKeyPEM != "" {
				got := cfg.Routes[0].Server().UpstreamOAuth2.PrivateKey()
				if got == nil || !got.Public().(*ecdsa.PublicKey).Equal(key.Public()) {
					t.Errorf("the route's key is not the scenario's")
				}
			}
		})
	}
}
