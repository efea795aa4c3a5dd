package mockas

import (
	"net/http"
	"net/url"
	"testing"
)

// The fixture's clients.
const (
	pubID      = "public-app"
	pubRedir   = "https://client.example.net/cb"
	pub2ID     = "other-public-app"
	confID     = "conf-app"
	confSecret = "conf-secret"
	confRedir  = "https://app.example.org/cb"
)

// fixture is an authorization server at https://auth.provider.com with
// pre-registered clients, a host for client metadata documents, and a
// browser.
type fixture struct {
	e    *env
	s    *Server
	docs *cimdHost
	b    *browser
}

// newFixture builds a fixture; mutate may change the Config, and patch the
// Server before it serves (tests use it to break a check on purpose).
func newFixture(t *testing.T, mutate func(*Config), patch func(*Server)) *fixture {
	t.Helper()
	e := newEnv(t)
	docs := e.cimdHost("client.example.net")
	docs.handle("/oauth/client.json", jsonDoc(goodCIMD()))
	cfg := e.config(asIssuer)
	cfg.TrustedHosts = []string{"client.example.net"}
	cfg.ScopesSupported = []string{"files:read", "files:write"}
	cfg.Clients = []Client{
		{ID: pubID, Name: "Public App", RedirectURIs: []string{pubRedir}},
		{ID: pub2ID, RedirectURIs: []string{pubRedir}},
		{ID: confID, Secret: confSecret, RedirectURIs: []string{confRedir}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if patch != nil {
		patch(s)
	}
	e.serve("auth.provider.com", s)
	return &fixture{e: e, s: s, docs: docs, b: e.browser("auth.provider.com")}
}

// authParams returns a valid authorization request for client.
func authParams(clientID, redirect, challenge string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"state":                 {"xyz"},
		"scope":                 {"openid files:read"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"resource":              {mcpResource},
	}
}

func authURL(v url.Values) string { return asIssuer + "/authorize?" + v.Encode() }

// code runs a full authorization as alice and returns the code and its
// verifier.
func (f *fixture) code(t *testing.T, clientID, redirect string, change func(url.Values)) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkce(t.Name() + clientID + redirect)
	v := authParams(clientID, redirect, challenge)
	if change != nil {
		change(v)
	}
	cb, err := f.b.authorizeAll(authURL(v), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	code = cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", cb)
	}
	return code, verifier
}

// token posts to the token endpoint.
func (f *fixture) token(t *testing.T, v url.Values, basicUser, basicPass string) (int, map[string]any) {
	t.Helper()
	status, body, err := postForm(f.e.client(), asIssuer+"/token", v, basicUser, basicPass)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// exchange is a valid token request for a code of the public client.
func exchange(code, verifier string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {pubRedir},
		"client_id":     {pubID},
		"code_verifier": {verifier},
		"resource":      {mcpResource},
	}
}

// userinfo calls the UserInfo endpoint with an access token.
func (f *fixture) userinfo(t *testing.T, accessToken string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, asIssuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := f.e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// get fetches a URL without following redirects.
func (f *fixture) get(t *testing.T, u string) *page {
	t.Helper()
	resp, err := f.e.client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p, err := readPage(resp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
