package mockas

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// ccRequest is a valid client_credentials request body.
func ccRequest() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"files:read"}, "resource": {mcpResource}}
}

// TestClientCredentials issues tokens to the confidential client for
// itself, with either secret method, and checks the token's claims.
func TestClientCredentials(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, tc := range []struct {
		name      string
		change    func(url.Values)
		basic     bool
		wantAud   string
		wantScope string
	}{
		{"basic, resource and scope", nil, true, mcpResource, "files:read"},
		{"post", func(v url.Values) { v.Set("client_id", confID); v.Set("client_secret", confSecret) }, false, mcpResource, "files:read"},
		{"no resource: aud is the client", del("resource"), true, confID, "files:read"},
		{"no scope", del("scope"), true, mcpResource, ""},
		{"two scopes", set("scope", "files:read files:write"), true, mcpResource, "files:read files:write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ccRequest()
			if tc.change != nil {
				tc.change(v)
			}
			user, pass := "", ""
			if tc.basic {
				user, pass = confID, confSecret
			}
			status, b := f.token(t, v, user, pass)
			if status != http.StatusOK {
				t.Fatalf("got %d %v", status, b)
			}
			for _, k := range []string{"refresh_token", "id_token"} {
				if _, ok := b[k]; ok {
					t.Errorf("client_credentials response has %s (RFC 6749 §4.4.3: no refresh token)", k)
				}
			}
			if b["token_type"] != "Bearer" || b["expires_in"] != float64(3600) {
				t.Errorf("token_type %v expires_in %v", b["token_type"], b["expires_in"])
			}
			if got, _ := b["scope"].(string); got != tc.wantScope {
				t.Errorf("scope %q, want %q", got, tc.wantScope)
			}
			c := checkAccessToken(t, f.e, b["access_token"].(string))
			got := map[string]any{"sub": c.Subject, "aud": []string(c.Audience), "client_id": c.ClientID, "scope": c.Scope, "auth_time": c.AuthTime}
			want := map[string]any{"sub": confID, "aud": []string{tc.wantAud}, "client_id": confID, "scope": tc.wantScope, "auth_time": int64(0)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			ev := lastEvent(f.s, "token")
			if ev.Kind != "token" || ev.Params["grant_type"] != "client_credentials" || ev.Detail["sub"] != confID || ev.Detail["aud"] != tc.wantAud || ev.Detail["jti"] != c.ID || ev.Detail["refresh_token"] != "" {
				t.Errorf("token event %+v", ev)
			}
		})
	}
}

// TestClientCredentialsRefusals sends one bad client_credentials request
// per case: the exact error, and nothing stored.
func TestClientCredentialsRefusals(t *testing.T) {
	f := newFixture(t, nil, nil)
	cases := []struct {
		name       string
		change     func(url.Values)
		basic      [2]string
		status     int
		code, desc string
	}{
		{name: "public client", change: set("client_id", pubID), status: 400, code: "unauthorized_client", desc: "public client"},
		{name: "client metadata document client", change: set("client_id", cimdURL), status: 400, code: "unauthorized_client", desc: "public client"},
		{name: "wrong secret (basic)", basic: [2]string{confID, "wrong"}, status: 401, code: "invalid_client", desc: "secret of \"conf-app\" is wrong"},
		{name: "wrong secret (post)", change: func(v url.Values) { v.Set("client_id", confID); v.Set("client_secret", "wrong") }, status: 401, code: "invalid_client", desc: "is wrong"},
		{name: "no secret", change: set("client_id", confID), status: 401, code: "invalid_client", desc: "is confidential"},
		{name: "unknown client", basic: [2]string{"nobody", "x"}, status: 401, code: "invalid_client", desc: "not registered"},
		{name: "scope not supported", change: set("scope", "admin"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_scope", desc: `"admin" is not supported`},
		{name: "openid scope", change: set("scope", "openid files:read"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_scope", desc: "needs a signed-in user"},
		{name: "scope with a double space", change: set("scope", "files:read  files:write"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_scope", desc: "empty entry"},
		{name: "resource over http", change: set("resource", "http://remote-mcp.provider.com/mcp"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_target", desc: "must be an https URI"},
		{name: "resource with a fragment", change: set("resource", mcpResource+"#x"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_target", desc: "fragment"},
		{name: "resource relative", change: set("resource", "/mcp"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_target", desc: "not an absolute URI"},
		{name: "resource repeated", change: add("resource", "https://other.example.com/mcp"), basic: [2]string{confID, confSecret}, status: 400, code: "invalid_target", desc: "repeated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := ccRequest()
			if tc.change != nil {
				tc.change(v)
			}
			before := f.s.stats()
			status, body := f.token(t, v, tc.basic[0], tc.basic[1])
			desc, _ := body["error_description"].(string)
			if status != tc.status || body["error"] != tc.code || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want %d %s containing %q", status, body, tc.status, tc.code, tc.desc)
			}
			if _, ok := body["access_token"]; ok {
				t.Fatal("an error response carries an access token")
			}
			if diff := cmp.Diff(before, f.s.stats()); diff != "" {
				t.Errorf("a refused request changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

// TestClientCredentialsTokenRevocation revokes a client_credentials token
// and checks the token endpoint's grant list.
func TestClientCredentialsTokenRevocation(t *testing.T) {
	f := newFixture(t, nil, nil)
	_, b := f.token(t, ccRequest(), confID, confSecret)
	at := b["access_token"].(string)
	status, _, err := postForm(f.e.client(), asIssuer+"/revoke", url.Values{"token": {at}}, confID, confSecret)
	if err != nil || status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, err)
	}
	if ev := lastEvent(f.s, "revoke"); ev.Kind != "revoke" || ev.Detail["revoked"] != "access_token" {
		t.Fatalf("revoke event %+v", ev)
	}
	if _, err := f.s.verifyAccess(at); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked client_credentials token still verifies: %v", err)
	}
}

// lastEvent returns the last recorded event of kind, or the zero Event.
func lastEvent(s *Server, kind string) control.Event {
	evs := s.Recorder().Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == kind {
			return evs[i]
		}
	}
	return control.Event{}
}
