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

// TestJWTBearerRoutesNeedTheGrant: an enterprise route and a workload
// identity route refuse an authorization server whose metadata lists its
// grants without the JWT bearer grant, before the identity provider is
// asked or any token request is sent, and without another grant; a
// workload identity route registers nowhere and sends its client id as a
// public client's.
func TestJWTBearerRoutesNeedTheGrant(t *testing.T) {
	for _, route := range []struct {
		name, server string
		plan         func(f *Flow, d *upstream.Discovery, g *upstream.Grant) error
		planned      func(g *upstream.Grant) bool // what a grant that is not refused holds
	}{
		{"enterprise", "{upstream_oauth2: {client_id: e, client_secret: s}, enterprise: {}}",
			func(f *Flow, d *upstream.Discovery, _ *upstream.Grant) error {
				return f.enterpriseGrant(context.Background(), d, "bob")
			},
			func(*upstream.Grant) bool { return true }},
		{"workload", "{upstream_oauth2: {client_id: w}}",
			func(f *Flow, d *upstream.Discovery, g *upstream.Grant) error {
				return f.workloadGrant(context.Background(), d, g, "bob")
			},
			func(g *upstream.Grant) bool { return g.ClientID == "w" && g.Method == upstream.MethodWorkload }},
	} {
		rc := configtest.Route(t, "https://upstream.test", route.server)
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
			err := route.plan(f, d, g)
			var ae *apierror.Error
			switch {
			case tc.refused && (!errors.As(err, &ae) || ae.Code != apierror.CodeUpstreamAuthorization || !strings.Contains(ae.Message, "does not offer the JWT bearer grant")):
				t.Errorf("%s, grants %v: error %v, want upstream_authorization_failed naming the JWT bearer grant", route.name, tc.grants, err)
			case !tc.refused && err != nil:
				t.Errorf("%s, grants %v: %v", route.name, tc.grants, err)
			case !tc.refused && !route.planned(g):
				t.Errorf("%s, grants %v: grant %+v", route.name, tc.grants, g)
			}
		}
	}
}
