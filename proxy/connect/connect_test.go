package connect

import (
	"context"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
)

// TestPlanCarriesTheRequestShape: audience and omit_resource reach the
// grant the proxy authorizes with, so every request of it carries them.
func TestPlanCarriesTheRequestShape(t *testing.T) {
	rc := configtest.Route(t, "https://upstream.test", "{upstream_oauth2: {client_id: c, audience: [aud-1, aud-2], omit_resource: true, endpoint: {auth_url: 'https://as.test/authorize', token_url: 'https://as.test/token'}}}")
	f := &Flow{Route: rc}
	g, noAuth, err := f.Plan(context.Background(), "https://upstream.test/mcp", "", "alice")
	if err != nil || noAuth {
		t.Fatalf("Plan: %v, %v", err, noAuth)
	}
	if strings.Join(g.Audience, " ") != "aud-1 aud-2" || !g.OmitResource {
		t.Fatalf("grant %+v lacks the route's audience or omit_resource", g)
	}
	u := g.AuthCodeURL("https://mcp.example.com/.mcp-proxy/upstream/callback", "state", "verifier-verifier-verifier-verifier-verifier")
	if !strings.Contains(u, "audience=aud-1+aud-2") || strings.Contains(u, "resource=") {
		t.Errorf("authorization URL %s", u)
	}
}

// TestAudienceAloneIsNoRegistration: a block with only audience is valid
// and names no pre-registered client.
func TestAudienceAloneIsNoRegistration(t *testing.T) {
	rc := configtest.Route(t, "https://upstream.test", "{upstream_oauth2: {audience: [https://remote.test/mcp]}}")
	if rc.Server().UpstreamOAuth2.Registered() {
		t.Error("an audience-only block counts as a pre-registered client")
	}
}
