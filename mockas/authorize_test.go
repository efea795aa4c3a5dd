package mockas

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func del(names ...string) func(url.Values) {
	return func(v url.Values) {
		for _, n := range names {
			v.Del(n)
		}
	}
}

func set(name, value string) func(url.Values) {
	return func(v url.Values) { v.Set(name, value) }
}

func add(name, value string) func(url.Values) {
	return func(v url.Values) { v.Add(name, value) }
}

// durable is the part of the state a refused request must leave alone.
type durable struct{ Flows, Codes, Refresh, Access, Families, Consents, CIMD, Registered int }

func durableOf(st stats) durable {
	return durable{st.Flows, st.Codes, st.Refresh, st.Access, st.Families, st.Consents, st.CIMD, st.Registered}
}

// TestAuthorizeRefusals sends one bad authorization request per case and
// checks the exact error, where it is reported (an HTML page while the
// client or redirect URI is not validated, a redirect after), and that
// nothing was stored.
func TestAuthorizeRefusals(t *testing.T) {
	f := newFixture(t, nil, nil)
	_, challenge := pkce("challenge")
	cases := []struct {
		name   string
		change func(url.Values)
		page   bool   // answered with an HTML page, not a redirect
		code   string // the OAuth error code
		desc   string // a part of error_description
	}{
		{"client_id missing", del("client_id"), true, "invalid_request", "client_id is missing"},
		{"client_id repeated", add("client_id", pub2ID), true, "invalid_request", "client_id is repeated"},
		{"unknown client", set("client_id", "nobody"), true, "invalid_client", `client_id "nobody" is not registered`},
		{"redirect_uri missing", del("redirect_uri"), true, "invalid_request", "redirect_uri is missing"},
		{"redirect_uri with a trailing slash", set("redirect_uri", pubRedir+"/"), true, "invalid_request", "exact string match"},
		{"redirect_uri with a query added", set("redirect_uri", pubRedir+"?next=1"), true, "invalid_request", "exact string match"},
		{"redirect_uri with an upper-case host", set("redirect_uri", "https://CLIENT.example.net/cb"), true, "invalid_request", "exact string match"},
		{"redirect_uri with a port", set("redirect_uri", "https://client.example.net:443/cb"), true, "invalid_request", "exact string match"},
		{"redirect_uri of another client", set("redirect_uri", confRedir), true, "invalid_request", "is not registered for client"},
		{"PKCE missing", del("code_challenge", "code_challenge_method"), false, "invalid_request", "code_challenge is missing"},
		{"PKCE method missing", del("code_challenge_method"), false, "invalid_request", "code_challenge_method is missing"},
		{"PKCE plain", set("code_challenge_method", "plain"), false, "invalid_request", `"plain" is not supported`},
		{"PKCE challenge malformed", set("code_challenge", "too-short"), false, "invalid_request", "code_challenge is not"},
		{"response_type missing", del("response_type"), false, "invalid_request", "response_type is missing"},
		{"response_type token", set("response_type", "token"), false, "unsupported_response_type", `"token"`},
		{"response_mode fragment", set("response_mode", "fragment"), false, "invalid_request", "response_mode"},
		{"resource with a fragment", set("resource", mcpResource+"#x"), false, "invalid_target", "fragment"},
		{"resource relative", set("resource", "/mcp"), false, "invalid_target", "not an absolute URI"},
		{"resource plain http", set("resource", "http://remote-mcp.provider.com/mcp"), false, "invalid_target", "must be an https URI"},
		{"resource repeated", add("resource", "https://other.example.com/mcp"), false, "invalid_target", "resource is repeated"},
		{"scope unsupported", set("scope", "openid admin"), false, "invalid_scope", `"admin" is not supported`},
		{"scope with a double space", set("scope", "openid  files:read"), false, "invalid_scope", "empty entry"},
		{"state repeated", add("state", "again"), false, "invalid_request", "state is repeated"},
		{"prompt unknown", set("prompt", "always"), false, "invalid_request", "prompt value"},
		{"prompt none while signed out", set("prompt", "none"), false, "login_required", "nobody is signed in"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := authParams(pubID, pubRedir, challenge)
			tc.change(v)
			before := durableOf(f.s.stats())
			p := f.get(t, authURL(v))
			var gotCode, gotDesc string
			if tc.page {
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q: want an HTML 400 page and no redirect", p.status, p.header.Get("Location"))
				}
				if p.header.Get("X-Frame-Options") != "DENY" || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
					t.Errorf("error page headers: %v", p.header)
				}
				gotCode, gotDesc = elementText(p.body, "error"), elementText(p.body, "error_description")
			} else {
				if p.status != http.StatusFound {
					t.Fatalf("status %d, want 302 to the client: %.300s", p.status, p.body)
				}
				loc := p.location()
				q := loc.Query()
				if base := loc.Scheme + "://" + loc.Host + loc.Path; base != pubRedir || q.Get("state") != v.Get("state") || q.Get("iss") != asIssuer || q.Get("code") != "" {
					t.Fatalf("redirect %s: want %s with state, iss and no code", loc, pubRedir)
				}
				gotCode, gotDesc = q.Get("error"), q.Get("error_description")
			}
			if gotCode != tc.code || !strings.Contains(gotDesc, tc.desc) {
				t.Errorf("error %q %q, want %q containing %q", gotCode, gotDesc, tc.code, tc.desc)
			}
			if diff := cmp.Diff(before, durableOf(f.s.stats())); diff != "" {
				t.Errorf("a refused request changed the state (-before +after):\n%s", diff)
			}
			evs := f.s.Recorder().Events()
			last := evs[len(evs)-1]
			if last.Kind != "authorize" || last.Detail["error"] != tc.code || last.Host != "auth.provider.com" || last.Path != "/authorize" {
				t.Errorf("last event %+v, want an authorize event with error %s", last, tc.code)
			}
		})
	}
}

// TestLoginAndConsentForms covers the form checks: CSRF, the session
// binding, deny, consent memory, prompt=login and prompt=consent.
func TestLoginAndConsentForms(t *testing.T) {
	r := &formsRun{f: newFixture(t, nil, nil)}
	_, r.challenge = pkce("forms")
	// In this order: the last one moves the clock past the flows' lifetime.
	for _, tc := range []struct {
		name  string
		check func(*testing.T, *formsRun)
	}{
		{"wrong CSRF token", checkWrongCSRF},
		{"form posted from another browser", checkFormFromAnotherBrowser},
		{"unknown user", checkUnknownUser},
		{"deny", checkDeny},
		{"consent is remembered per client and scope", checkConsentRemembered},
		{"expired flow", checkExpiredFlow},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, r) })
	}
}

// formsRun is TestLoginAndConsentForms's server and the PKCE challenge its
// authorization requests carry.
type formsRun struct {
	f         *fixture
	challenge string
}

// start opens an authorization request of the public client in b, changed
// by change when not nil.
func (r *formsRun) start(t *testing.T, b *browser, change func(url.Values)) *page {
	t.Helper()
	v := authParams(pubID, pubRedir, r.challenge)
	if change != nil {
		change(v)
	}
	p, err := b.get(authURL(v))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkWrongCSRF(t *testing.T, r *formsRun) {
	b := r.f.e.browser("auth.provider.com")
	lf, err := onlyForm(r.start(t, b, nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.submit(lf, url.Values{"username": {"alice"}, "password": {"alice-password"}, "csrf_token": {"forged"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusForbidden || !strings.Contains(elementText(p.body, "error_description"), "CSRF") {
		t.Fatalf("status %d %q", p.status, elementText(p.body, "error_description"))
	}
}

func checkFormFromAnotherBrowser(t *testing.T, r *formsRun) {
	lf, err := onlyForm(r.start(t, r.f.e.browser("auth.provider.com"), nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.f.e.browser("auth.provider.com").submit(lf, url.Values{"username": {"alice"}, "password": {"alice-password"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusForbidden || !strings.Contains(elementText(p.body, "error_description"), "session") {
		t.Fatalf("status %d %q", p.status, elementText(p.body, "error_description"))
	}
}

func checkUnknownUser(t *testing.T, r *formsRun) {
	b := r.f.e.browser("auth.provider.com")
	p, err := b.login(r.start(t, b, nil), "mallory", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("status %d", p.status)
	}
}

func checkDeny(t *testing.T, r *formsRun) {
	b := r.f.e.browser("auth.provider.com")
	before := durableOf(r.f.s.stats())
	p, err := b.login(r.start(t, b, nil), "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = b.decide(p, "deny"); err != nil {
		t.Fatal(err)
	}
	q := p.location().Query()
	if p.status != http.StatusFound || q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("iss") != asIssuer || q.Get("code") != "" {
		t.Fatalf("deny: %d %s", p.status, p.location())
	}
	if diff := cmp.Diff(before, durableOf(r.f.s.stats())); diff != "" {
		t.Errorf("deny stored something (-before +after):\n%s", diff)
	}
}

func checkConsentRemembered(t *testing.T, r *formsRun) {
	b := r.f.e.browser("auth.provider.com")
	if _, err := b.authorizeAll(authURL(authParams(pubID, pubRedir, r.challenge)), "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	if p := r.start(t, b, nil); p.status != http.StatusFound {
		t.Fatalf("same client and scopes: status %d, want a direct redirect", p.status)
	}
	checkPage(t, r.start(t, b, set("scope", "openid files:read files:write")), "consent")
	checkPage(t, r.start(t, b, set("client_id", pub2ID)), "consent")
	checkPage(t, r.start(t, b, set("prompt", "consent")), "consent")
	checkPage(t, r.start(t, b, set("prompt", "login")), "login")
	p := r.start(t, b, set("prompt", "none"))
	if p.status != http.StatusFound || p.location().Query().Get("code") == "" {
		t.Fatalf("prompt=none with consent: %d %s", p.status, p.location())
	}
	p = r.start(t, b, func(v url.Values) { v.Set("prompt", "none"); v.Set("client_id", pub2ID) })
	if p.location().Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent: %s", p.location())
	}
}

func checkExpiredFlow(t *testing.T, r *formsRun) {
	b := r.f.e.browser("auth.provider.com")
	p := r.start(t, b, nil)
	r.f.e.clock.Advance(flowTTL + 1)
	p, err := b.login(p, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusBadRequest || !strings.Contains(elementText(p.body, "error_description"), "expired") {
		t.Fatalf("status %d %q", p.status, elementText(p.body, "error_description"))
	}
}

// TestMetadata checks the metadata document and every URL it is served at,
// for an issuer with a path.
func TestMetadata(t *testing.T) {
	const issuer = "https://auth.provider.com/tenant1"
	e := newEnv(t)
	cfg := e.config(issuer)
	cfg.ScopesSupported = []string{"files:read"}
	e.newServer(cfg)
	c := e.client()
	want := map[string]any{
		"issuer":                                           issuer,
		"authorization_endpoint":                           issuer + "/authorize",
		"token_endpoint":                                   issuer + "/token",
		"jwks_uri":                                         issuer + "/jwks",
		"userinfo_endpoint":                                issuer + "/userinfo",
		"revocation_endpoint":                              issuer + "/revoke",
		"scopes_supported":                                 []any{"files:read", "openid", "email", "profile"},
		"response_types_supported":                         []any{"code"},
		"response_modes_supported":                         []any{"query"},
		"grant_types_supported":                            []any{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":                 []any{"S256"},
		"token_endpoint_auth_methods_supported":            []any{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":       []any{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []any{"ES256", "RS256"},
		"client_id_metadata_document_supported":            true,
		"authorization_response_iss_parameter_supported":   true,
		"subject_types_supported":                          []any{"public"},
		"id_token_signing_alg_values_supported":            []any{"RS256"},
		"claims_supported":                                 []any{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "email", "email_verified", "name", "groups"},
		"prompt_values_supported":                          []any{"none", "login", "consent"},
	}
	for _, p := range []string{
		"/.well-known/oauth-authorization-server/tenant1",
		"/.well-known/openid-configuration/tenant1",
		"/tenant1/.well-known/openid-configuration",
	} {
		status, got, err := getJSON(c, "https://auth.provider.com"+p)
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v", p, status, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", p, diff)
		}
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/authorize", "/tenant1/.well-known/oauth-authorization-server"} {
		if status, _, _ := getJSON(c, "https://auth.provider.com"+p); status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404 for an issuer with a path", p, status)
		}
	}
}

func getJSON(c *http.Client, u string) (int, map[string]any, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			return resp.StatusCode, nil, &url.Error{Op: "content type " + ct, URL: u}
		}
		err = jsonDecode(resp, &m)
	}
	return resp.StatusCode, m, err
}
