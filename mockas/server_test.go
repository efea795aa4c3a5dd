package mockas

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
)

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "issuer is required"},
		{"http issuer", func(c *Config) { c.Issuer = "http://auth.provider.com" }, "plain http is only accepted on a loopback host"},
		{"trailing slash", func(c *Config) { c.Issuer = "https://auth.provider.com/" }, "must not end with a slash"},
		{"query", func(c *Config) { c.Issuer = "https://auth.provider.com?x=1" }, "must not have a query"},
		{"fragment", func(c *Config) { c.Issuer = "https://auth.provider.com#x" }, "must not have a fragment"},
		{"user info", func(c *Config) { c.Issuer = "https://u@auth.provider.com" }, "user information"},
		{"dot segment", func(c *Config) { c.Issuer = "https://auth.provider.com/a/../b" }, ". or .."},
		{"not a URL", func(c *Config) { c.Issuer = "auth.provider.com" }, "must be an https URL"},
		{"no users", func(c *Config) { c.Users = []User{} }, "no users"},
		{"user without password", func(c *Config) { c.Users = []User{{Username: "x"}} }, "username and password are required"},
		{"repeated user", func(c *Config) { c.Users = []User{{Username: "x", Password: "p"}, {Username: "x", Password: "q"}} }, "username repeated"},
		{"repeated subject", func(c *Config) {
			c.Users = []User{{Username: "x", Password: "p", Subject: "s"}, {Username: "y", Password: "q", Subject: "s"}}
		}, `subject "s" repeated`},
		{"client id is an https URL", func(c *Config) { c.Clients = []Client{{ID: "https://x.example/c", RedirectURIs: []string{pubRedir}}} }, "must not be an https URL"},
		{"client without redirect", func(c *Config) { c.Clients = []Client{{ID: "a"}} }, "at least one redirect URI"},
		{"client redirect over http", func(c *Config) { c.Clients = []Client{{ID: "a", RedirectURIs: []string{"http://app.example.org/cb"}}} }, "must be https"},
		{"client redirect with fragment", func(c *Config) {
			c.Clients = []Client{{ID: "a", RedirectURIs: []string{"https://app.example.org/cb#f"}}}
		}, "fragment"},
		{"client redirect relative", func(c *Config) { c.Clients = []Client{{ID: "a", RedirectURIs: []string{"/cb"}}} }, "not an absolute URL"},
		{"repeated client", func(c *Config) {
			c.Clients = []Client{{ID: "a", RedirectURIs: []string{pubRedir}}, {ID: "a", RedirectURIs: []string{pubRedir}}}
		}, "id repeated"},
		{"bad scope", func(c *Config) { c.ScopesSupported = []string{"a b"} }, "not a valid scope token"},
		{"negative TTL", func(c *Config) { c.CodeTTL = -1 }, "negative"},
		{"unknown algorithm", func(c *Config) { c.SigningAlgorithm = "HS256" }, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Issuer: asIssuer}
			tc.change(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, issuer := range []string{"http://localhost:8443", "http://127.0.0.1:9000/as", "https://auth.provider.com/tenant1"} {
		if _, err := New(Config{Issuer: issuer}); err != nil {
			t.Errorf("issuer %s: %v", issuer, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := ParseClientFlag("id=proxy,secret=s3,redirect=https://a.example/cb,redirect=http://127.0.0.1:8080/cb,name=The Proxy")
	if err != nil {
		t.Fatal(err)
	}
	want := Client{ID: "proxy", Secret: "s3", Name: "The Proxy", RedirectURIs: []string{"https://a.example/cb", "http://127.0.0.1:8080/cb"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"secret=x,redirect=https://a/cb", "id=x", "id=x,redirect=https://a/cb,colour=red", "id=x,https://a/cb"} {
		if _, err := ParseClientFlag(bad); err == nil {
			t.Errorf("ParseClientFlag(%q) accepted", bad)
		}
	}
	u, err := ParseUserFlag("carol:pw:with:colons")
	if err != nil || u.Username != "carol" || u.Password != "pw:with:colons" || u.Subject != "carol" || u.Email != "carol@example.com" {
		t.Errorf("ParseUserFlag: %+v %v", u, err)
	}
	for _, bad := range []string{"carol", ":pw", "carol:"} {
		if _, err := ParseUserFlag(bad); err == nil {
			t.Errorf("ParseUserFlag(%q) accepted", bad)
		}
	}
}

func TestHealthzAndControlAPI(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(asIssuer)
	cfg.ControlSecret = "control-secret"
	e.newServer(cfg)
	otherCfg := e.config("https://idp.example.com")
	e.newServer(otherCfg) // no control secret
	c := e.client()

	resp, err := c.Get(asIssuer + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	if s, _, _ := getJSON(c, "https://idp.example.com/.test/events"); s != http.StatusNotFound {
		t.Fatalf("control API without a secret: %d, want 404", s)
	}
	if s, _, _ := getJSON(c, asIssuer+"/.test/events"); s != http.StatusUnauthorized {
		t.Fatalf("control API without the secret: %d, want 401", s)
	}
	if s, _, _ := getJSON(c, asIssuer+"/.well-known/oauth-authorization-server"); s != 200 {
		t.Fatal(s)
	}
	if s, _, _ := getJSON(c, asIssuer+"/jwks"); s != 200 {
		t.Fatal(s)
	}
	cc := &control.Client{BaseURL: asIssuer, Secret: "control-secret", HTTP: c}
	evs, err := cc.Events(context.Background(), "metadata")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Host != "auth.provider.com" || evs[0].Path != "/.well-known/oauth-authorization-server" || evs[0].Status != 200 {
		t.Fatalf("metadata events: %+v", evs)
	}
	if err := cc.Do(context.Background(), http.MethodDelete, asIssuer+"/.test/events", nil, nil); err != nil {
		t.Fatal(err)
	}
	if evs, _ := cc.Events(context.Background(), ""); len(evs) != 0 {
		t.Fatalf("after DELETE: %+v", evs)
	}
}

// TestEventsAndLogsHoldNoSecrets runs every endpoint once and checks that
// each event kind was recorded with Host and Path, and that no secret
// appears in clear in the events or the log.
func TestEventsAndLogsHoldNoSecrets(t *testing.T) {
	var logs syncbuf.Buffer // the handlers log concurrently
	f := newFixture(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, nil)
	c := f.e.client()
	if s, _, _ := getJSON(c, asIssuer+"/.well-known/openid-configuration"); s != 200 {
		t.Fatal(s)
	}
	if s, _, _ := getJSON(c, asIssuer+"/jwks"); s != 200 {
		t.Fatal(s)
	}
	// A CIMD client and a confidential one, each through login and consent.
	verifier, challenge := pkce("events")
	cb, err := f.b.authorizeAll(authURL(authParams(cimdURL, cimdRedir, challenge)), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	v := exchange(cb.Query().Get("code"), verifier)
	v.Set("client_id", cimdURL)
	v.Set("redirect_uri", cimdRedir)
	_, t1 := f.token(t, v, "", "")
	code, verifier2 := f.code(t, confID, confRedir, nil)
	v2 := exchange(code, verifier2)
	v2.Set("redirect_uri", confRedir)
	v2.Del("client_id")
	_, t2 := f.token(t, v2, confID, confSecret)
	secrets := []string{cb.Query().Get("code"), verifier, code, verifier2, "alice-password", confSecret}
	for _, tok := range []map[string]any{t1, t2} {
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			s, _ := tok[k].(string)
			if s == "" {
				t.Fatalf("token response lacks %s: %v", k, tok)
			}
			secrets = append(secrets, s)
		}
	}
	if s, _ := f.userinfo(t, t1["access_token"].(string)); s != 200 {
		t.Fatal(s)
	}
	status, _, err := postForm(c, asIssuer+"/revoke", url.Values{"token": {t1["refresh_token"].(string)}, "client_id": {cimdURL}}, "", "")
	if err != nil || status != 200 {
		t.Fatal(status, err)
	}

	evs := f.s.Recorder().Events()
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Kind] = true
		if ev.Host == "" || ev.Path == "" {
			t.Errorf("event without Host or Path: %+v", ev)
		}
	}
	for _, k := range []string{"metadata", "authorize", "login", "consent", "cimd_fetch", "token", "jwks", "userinfo", "revoke"} {
		if !seen[k] {
			t.Errorf("no %s event", k)
		}
	}
	var all strings.Builder
	for _, ev := range evs {
		all.WriteString(cmp.Diff(nil, ev))
	}
	for _, where := range []struct{ name, text string }{{"events", all.String()}, {"log", logs.String()}} {
		for _, s := range secrets {
			if strings.Contains(where.text, s) {
				t.Errorf("the %s contain a secret in clear: %.12s…", where.name, s)
			}
		}
	}
	if !strings.Contains(logs.String(), `"event":"token"`) || !strings.Contains(logs.String(), `"client_id":"conf-app"`) {
		t.Errorf("log lacks the stable keys: %.500s", logs.String())
	}
}
