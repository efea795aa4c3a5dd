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

// TestWorkloadGrantNeedsJWTBearer: a workload identity route registers
// nowhere, sends its client id as a public client's, and refuses an
// authorization server whose metadata lists its grants without the JWT
// bearer grant, before any token request and without another grant.
func TestWorkloadGrantNeedsJWTBearer(t *testing.T) {
	rc := configtest.Route(t, "https://upstream.test", "{upstream_oauth2: {client_id: w}}")
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
		g := &upstream.Grant{Issuer: d.Issuer}
		err := f.workloadGrant(context.Background(), d, g, "bob")
		var ae *apierror.Error
		switch {
		case tc.refused && (!errors.As(err, &ae) || ae.Code != apierror.CodeUpstreamAuthorization || !strings.Contains(ae.Message, "does not offer the JWT bearer grant")):
			t.Errorf("grants %v: error %v, want upstream_authorization_failed naming the JWT bearer grant", tc.grants, err)
		case !tc.refused && err != nil:
			t.Errorf("grants %v: %v", tc.grants, err)
		case !tc.refused && (g.ClientID != "w" || g.Method != upstream.MethodWorkload):
			t.Errorf("grants %v: grant %+v, want client id w by the workload method", tc.grants, g)
		}
	}
}
