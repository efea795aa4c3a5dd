package connect

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// TestEnterpriseGrantNeedsJWTBearer: an enterprise route refuses an
// authorization server whose metadata lists its grants without the JWT
// bearer grant, before the identity provider is asked.
func TestEnterpriseGrantNeedsJWTBearer(t *testing.T) {
	rc := configtest.Route(t, "https://upstream.test", "{upstream_oauth2: {client_id: e, client_secret: s}, enterprise: {}}")
	f := &Flow{Route: rc, Discovery: &upstream.Discoverer{}, Log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		grants  []string
		refused bool
	}{
		{nil, false},
		{[]string{"authorization_code", upstream.GrantTypeJWTBearer}, false},
		{[]string{"authorization_code", "client_credentials"}, true},
	} {
		d := &upstream.Discovery{URL: "https://upstream.test/mcp", Issuer: "https://as.test", AS: &oauthex.AuthServerMeta{GrantTypesSupported: tc.grants}}
		err := f.enterpriseGrant(context.Background(), d, "bob")
		var ae *apierror.Error
		switch {
		case tc.refused && (!errors.As(err, &ae) || !strings.Contains(ae.Message, "does not offer the JWT bearer grant")):
			t.Errorf("grants %v: error %v, want a refusal naming the JWT bearer grant", tc.grants, err)
		case !tc.refused && err != nil:
			t.Errorf("grants %v: %v", tc.grants, err)
		}
	}
}
