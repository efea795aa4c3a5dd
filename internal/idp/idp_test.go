package idp

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/mockas"
)

func TestConfigHasTheProxysClientAtEveryHost(t *testing.T) {
	got := Config("idp.example.com", "s3cret", "mcp.example.com", "inner.example.com")
	want := mockas.Config{
		Issuer: "https://idp.example.com",
		Clients: []mockas.Client{{ID: "mcp-proxy", Secret: "s3cret", Name: "mcp-proxy", RedirectURIs: []string{
			"https://mcp.example.com/.mcp-proxy/login/callback", "https://inner.example.com/.mcp-proxy/login/callback"}}},
		DisableCIMD: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config (-want +got):\n%s", diff)
	}
	if _, err := mockas.New(got); err != nil {
		t.Errorf("mockas refuses the configuration: %v", err)
	}
}
