package upstream

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestAuthServerMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://as.example", []string{
			"https://as.example/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration"}},
		{"https://as.example/", []string{
			"https://as.example/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration"}},
		{"http://as.example:8080/", []string{
			"http://as.example:8080/.well-known/oauth-authorization-server",
			"http://as.example:8080/.well-known/openid-configuration"}},
		{"https://as.example:8443", []string{
			"https://as.example:8443/.well-known/oauth-authorization-server",
			"https://as.example:8443/.well-known/openid-configuration"}},
		{"https://as.example/tenant", []string{
			"https://as.example/.well-known/oauth-authorization-server/tenant",
			"https://as.example/.well-known/openid-configuration/tenant",
			"https://as.example/tenant/.well-known/openid-configuration"}},
		{"https://as.example/tenant/", []string{
			"https://as.example/.well-known/oauth-authorization-server/tenant",
			"https://as.example/.well-known/openid-configuration/tenant",
			"https://as.example/tenant/.well-known/openid-configuration"}},
		{"https://as.example:8443/realms/mcp/", []string{
			"https://as.example:8443/.well-known/oauth-authorization-server/realms/mcp",
			"https://as.example:8443/.well-known/openid-configuration/realms/mcp",
			"https://as.example:8443/realms/mcp/.well-known/openid-configuration"}},
		{"http://127.0.0.1:5556/dex", []string{
			"http://127.0.0.1:5556/.well-known/oauth-authorization-server/dex",
			"http://127.0.0.1:5556/.well-known/openid-configuration/dex",
			"http://127.0.0.1:5556/dex/.well-known/openid-configuration"}},
		{"https://[::1]:4444/", []string{
			"https://[::1]:4444/.well-known/oauth-authorization-server",
			"https://[::1]:4444/.well-known/openid-configuration"}},
		{"https://as.example/a%2Fb", []string{
			"https://as.example/.well-known/oauth-authorization-server/a%2Fb",
			"https://as.example/.well-known/openid-configuration/a%2Fb",
			"https://as.example/a%2Fb/.well-known/openid-configuration"}},
	}
	for _, tt := range tests {
		got, err := AuthServerMetadataURLs(tt.issuer)
		if err != nil {
			t.Errorf("%s: %v", tt.issuer, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.issuer, got, tt.want)
		}
		for _, u := range got {
			_, rest, _ := strings.Cut(u, "://")
			if strings.Contains(rest, "//") || strings.HasSuffix(rest, "/") {
				t.Errorf("%s: malformed location %s", tt.issuer, u)
			}
		}
	}
	for _, bad := range []string{"as.example", "/path", "https://as.example/?tenant=1", "https://as.example/#x", "::"} {
		if got, err := AuthServerMetadataURLs(bad); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}

// TestDiscoverIssuerWithSlash is the Ory Hydra shape: the issuer's path is
// "/", and its metadata is at the root OpenID Connect location only.
func TestDiscoverIssuerWithSlash(t *testing.T) {
	w := newWorld(t)
	w.challenge(`Bearer`)
	w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": "https://mcp.test/mcp", "authorization_servers": []string{"https://as.test/"}})
	m := asMeta("https://as.test/")
	delete(m, "client_id_metadata_document_supported")
	w.json("as.test/.well-known/openid-configuration", m)
	d, _, err := (&Discoverer{HTTP: w.client}).Discover(context.Background(), "https://mcp.test/mcp", "")
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if d.Issuer != "https://as.test/" || d.AS.Issuer != "https://as.test/" {
		t.Errorf("issuer %q, metadata issuer %q", d.Issuer, d.AS.Issuer)
	}
	for _, p := range []string{"as.test/.well-known/oauth-authorization-server/", "as.test/.well-known/openid-configuration/", "as.test//.well-known/openid-configuration"} {
		if w.saw(p) {
			t.Errorf("fetched %s", p)
		}
	}
}
