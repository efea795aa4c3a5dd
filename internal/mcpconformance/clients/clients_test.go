package clients

import (
	"strings"
	"testing"
)

func TestProxyConfig(t *testing.T) {
	dcr, err := ProxyConfig(Run{ServerURL: "http://localhost:4000/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dcr, "    to: http://localhost:4000\n") || !strings.Contains(dcr, "dynamic_client_registration: true") || strings.Contains(dcr, "upstream_oauth2") {
		t.Errorf("without a pre-registered client:\n%s", dcr)
	}
	pre, err := ProxyConfig(Run{ServerURL: "http://localhost:4000/mcp", Context: ScenarioContext{ClientID: "pre", ClientSecret: "s#1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pre, `client_id: "pre"`) || !strings.Contains(pre, `client_secret: "s#1"`) || strings.Contains(pre, "dynamic_client_registration") {
		t.Errorf("with a pre-registered client:\n%s", pre)
	}
}
