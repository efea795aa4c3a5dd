package mockas

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTokenRefusals presents one bad token request per case for a fresh,
// valid code, checks the exact error and status, checks that nothing was
// stored, and then proves the code was not consumed by redeeming it.
func TestTokenRefusals(t *testing.T) {
	f := newFixture(t, nil, nil)
	cases := []struct {
		name       string
		change     func(url.Values)
		basic      [2]string // Basic user and password, if any
		advance    time.Duration
		status     int
		code, desc string
	}{
		{name: "wrong code_verifier", change: set("code_verifier", strings.Repeat("a", 43)), status: 400, code: "invalid_grant", desc: "does not match the code_challenge"},
		{name: "code_verifier missing", change: del("code_verifier"), status: 400, code: "invalid_request", desc: "code_verifier is missing"},
		{name: "code_verifier too short", change: set("code_verifier", "abc"), status: 400, code: "invalid_grant", desc: "43 to 128"},
		{name: "redirect_uri differs", change: set("redirect_uri", pubRedir+"/"), status: 400, code: "invalid_grant", desc: "differs"},
		{name: "redirect_uri missing", change: del("redirect_uri"), status: 400, code: "invalid_request", desc: "redirect_uri is missing"},
		{name: "code of another client", change: set("client_id", pub2ID), status: 400, code: "invalid_grant", desc: "another client"},
		{name: "unknown client", change: set("client_id", "nobody"), status: 401, code: "invalid_client", desc: "not registered"},
		{name: "no client_id", change: del("client_id"), status: 401, code: "invalid_client", desc: "no client_id"},
		{name: "public client sends an empty Basic secret", change: del("client_id"), basic: [2]string{pubID, ""}, status: 401, code: "invalid_client", desc: "public client"},
		{name: "public client sends client_secret_post", change: set("client_secret", "x"), status: 401, code: "invalid_client", desc: "public client"},
		{name: "resource differs", change: set("resource", "https://other.example.com/mcp"), status: 400, code: "invalid_target", desc: "differs"},
		{name: "resource repeated", change: add("resource", mcpResource), status: 400, code: "invalid_target", desc: "repeated"},
		{name: "code repeated", change: add("code", "again"), status: 400, code: "invalid_request", desc: "code is repeated"},
		{name: "unknown code", change: set("code", "not-a-code"), status: 400, code: "invalid_grant", desc: "unknown"},
		{name: "code missing", change: del("code"), status: 400, code: "invalid_request", desc: "code is missing"},
		{name: "grant_type missing", change: del("grant_type"), status: 400, code: "invalid_request", desc: "grant_type is missing"},
		{name: "grant_type password", change: set("grant_type", "password"), status: 400, code: "unsupported_grant_type", desc: "password"},
		{name: "expired code", advance: DefaultCodeTTL + time.Second, status: 400, code: "invalid_grant", desc: "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := f.code(t, pubID, pubRedir, nil)
			f.e.clock.Advance(tc.advance)
			v := exchange(code, verifier)
			if tc.change != nil {
				tc.change(v)
			}
			before := durableOf(f.s.stats())
			status, body := f.token(t, v, tc.basic[0], tc.basic[1])
			if status != tc.status || body["error"] != tc.code || !strings.Contains(body["error_description"].(string), tc.desc) {
				t.Fatalf("got %d %v, want %d %s containing %q", status, body, tc.status, tc.code, tc.desc)
			}
			if _, ok := body["access_token"]; ok {
				t.Fatal("an error response carries an access token")
			}
			if diff := cmp.Diff(before, durableOf(f.s.stats())); diff != "" {
				t.Errorf("a refused request changed the state (-before +after):\n%s", diff)
			}
			if tc.advance > 0 {
				return
			}
			// Nothing was consumed: the same code still redeems once.
			if status, body := f.token(t, exchange(code, verifier), "", ""); status != http.StatusOK {
				t.Fatalf("the code no longer redeems after a refused request: %d %v", status, body)
			}
		})
	}
}

// TestTokenRequestShape covers the transport rules of the token endpoint.
func TestTokenRequestShape(t *testing.T) {
	f := newFixture(t, nil, nil)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	c := f.e.client()
	for _, tc := range []struct {
		name, method, url, ctype string
		status                   int
		code                     string
	}{
		{"GET", http.MethodGet, asIssuer + "/token", "", 405, "invalid_request"},
		{"JSON body", http.MethodPost, asIssuer + "/token", "application/json", 400, "invalid_request"},
		{"parameters in the query", http.MethodPost, asIssuer + "/token?" + exchange(code, verifier).Encode(), "application/x-www-form-urlencoded", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(exchange(code, verifier).Encode()))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = jsonDecode(resp, &body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

// TestConfidentialClient authenticates with client_secret_basic and
// client_secret_post, and is refused without or with a wrong secret or with
// both methods at once.
func TestConfidentialClient(t *testing.T) {
	f := newFixture(t, nil, nil)
	req := func(code, verifier string) url.Values {
		v := exchange(code, verifier)
		v.Set("redirect_uri", confRedir)
		v.Del("client_id")
		return v
	}
	for _, tc := range []struct {
		name   string
		body   url.Values
		basic  [2]string
		status int
		code   string
	}{
		{"basic", nil, [2]string{confID, confSecret}, 200, ""},
		{"post", url.Values{"client_id": {confID}, "client_secret": {confSecret}}, [2]string{}, 200, ""},
		{"no secret", url.Values{"client_id": {confID}}, [2]string{}, 401, "invalid_client"},
		{"wrong basic secret", nil, [2]string{confID, "wrong"}, 401, "invalid_client"},
		{"wrong post secret", url.Values{"client_id": {confID}, "client_secret": {"wrong"}}, [2]string{}, 401, "invalid_client"},
		{"both methods", url.Values{"client_secret": {confSecret}}, [2]string{confID, confSecret}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := f.code(t, confID, confRedir, nil)
			v := req(code, verifier)
			for k, vals := range tc.body {
				v[k] = vals
			}
			status, body := f.token(t, v, tc.basic[0], tc.basic[1])
			if status != tc.status || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	evs := f.s.Recorder().Events()
	for _, ev := range evs {
		if ev.Kind == "token" && ev.Params["client_secret"] != "" && !strings.HasPrefix(ev.Params["client_secret"], "fp:") {
			t.Fatalf("client secret recorded in clear: %+v", ev)
		}
	}
}

// TestCodeReuseRevokes redeems a code twice: the second time is refused
// with invalid_grant and revokes the tokens of the first.
func TestCodeReuseRevokes(t *testing.T) {
	f := newFixture(t, nil, nil)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	status, first := f.token(t, exchange(code, verifier), "", "")
	if status != http.StatusOK {
		t.Fatalf("first redemption: %d %v", status, first)
	}
	at, rt := first["access_token"].(string), first["refresh_token"].(string)
	if status, _ := f.userinfo(t, at); status != http.StatusOK {
		t.Fatalf("userinfo before reuse: %d", status)
	}
	status, second := f.token(t, exchange(code, verifier), "", "")
	if status != http.StatusBadRequest || second["error"] != "invalid_grant" {
		t.Fatalf("second redemption: %d %v, want 400 invalid_grant", status, second)
	}
	status, h := f.userinfo(t, at)
	if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("userinfo after reuse: %d %q, want 401 invalid_token", status, h.Get("WWW-Authenticate"))
	}
	status, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pubID}}, "", "")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after reuse: %d %v", status, body)
	}
}

// TestCodeRedeemedOnceUnderConcurrency races redemptions of one code:
// exactly one wins.
func TestCodeRedeemedOnceUnderConcurrency(t *testing.T) {
	f := newFixture(t, nil, nil)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := postForm(f.e.client(), asIssuer+"/token", exchange(code, verifier), "", "")
			if err == nil && status == http.StatusOK {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions succeeded, want 1", wins)
	}
}

// TestRefreshRotation covers rotation, reuse detection, scope narrowing,
// resource binding and expiry.
func TestRefreshRotation(t *testing.T) {
	f := newFixture(t, nil, nil)
	// In this order: the last one moves the clock past the tokens' lifetime.
	for _, tc := range []struct {
		name  string
		check func(*testing.T, *fixture)
	}{
		{"reuse revokes the family", checkRefreshReuse},
		{"scope may narrow, not widen", checkRefreshScope},
		{"resource is bound to the grant", checkRefreshResource},
		{"another client", checkRefreshOtherClient},
		{"expiry", checkRefreshExpiry},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, f) })
	}
}

// redeemPublic runs the public client's code flow and returns the token
// response.
func (f *fixture) redeemPublic(t *testing.T) map[string]any {
	t.Helper()
	code, verifier := f.code(t, pubID, pubRedir, nil)
	status, body := f.token(t, exchange(code, verifier), "", "")
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, body)
	}
	return body
}

// refreshPublic redeems the public client's refresh token rt, with extra
// parameters.
func (f *fixture) refreshPublic(t *testing.T, rt string, extra url.Values) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pubID}}
	for k, vals := range extra {
		v[k] = vals
	}
	return f.token(t, v, "", "")
}

func checkRefreshReuse(t *testing.T, f *fixture) {
	r1 := f.redeemPublic(t)["refresh_token"].(string)
	status, b2 := f.refreshPublic(t, r1, nil)
	if status != http.StatusOK || b2["refresh_token"] == r1 {
		t.Fatalf("refresh: %d %v", status, b2)
	}
	r2, at2 := b2["refresh_token"].(string), b2["access_token"].(string)
	before := durableOf(f.s.stats())
	status, b := f.refreshPublic(t, r1, nil)
	if status != http.StatusBadRequest || b["error"] != "invalid_grant" || !strings.Contains(b["error_description"].(string), "already used") {
		t.Fatalf("reuse of a rotated token: %d %v", status, b)
	}
	if diff := cmp.Diff(before, durableOf(f.s.stats())); diff != "" {
		t.Errorf("the refused refresh issued something (-before +after):\n%s", diff)
	}
	if status, b := f.refreshPublic(t, r2, nil); status != http.StatusBadRequest || b["error"] != "invalid_grant" || !strings.Contains(b["error_description"].(string), "revoked") {
		t.Fatalf("the newest token of a revoked family: %d %v", status, b)
	}
	if status, _ := f.userinfo(t, at2); status != http.StatusUnauthorized {
		t.Fatalf("an access token of a revoked family: userinfo %d", status)
	}
}

func checkRefreshScope(t *testing.T, f *fixture) {
	rt := f.redeemPublic(t)["refresh_token"].(string)
	if status, b := f.refreshPublic(t, rt, url.Values{"scope": {"openid files:write"}}); status != 400 || b["error"] != "invalid_scope" {
		t.Fatalf("widen: %d %v", status, b)
	}
	status, b := f.refreshPublic(t, rt, url.Values{"scope": {"files:read"}})
	if status != 200 || b["scope"] != "files:read" || b["id_token"] != nil {
		t.Fatalf("narrow: %d %v", status, b)
	}
	// The new refresh token keeps the grant's scope (RFC 6749 §6).
	if status, b := f.refreshPublic(t, b["refresh_token"].(string), url.Values{"scope": {"openid files:read"}}); status != 200 || b["id_token"] == nil {
		t.Fatalf("back to the granted scope: %d %v", status, b)
	}
}

func checkRefreshResource(t *testing.T, f *fixture) {
	rt := f.redeemPublic(t)["refresh_token"].(string)
	if status, b := f.refreshPublic(t, rt, url.Values{"resource": {"https://other.example.com/mcp"}}); status != 400 || b["error"] != "invalid_target" {
		t.Fatalf("other resource: %d %v", status, b)
	}
	status, b := f.refreshPublic(t, rt, url.Values{"resource": {mcpResource}})
	if status != 200 {
		t.Fatalf("same resource: %d %v", status, b)
	}
	claims := checkAccessToken(t, f.e, b["access_token"].(string))
	if claims.Audience[0] != mcpResource {
		t.Fatalf("aud %v", claims.Audience)
	}
}

func checkRefreshOtherClient(t *testing.T, f *fixture) {
	rt := f.redeemPublic(t)["refresh_token"].(string)
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {pub2ID}}
	if status, b := f.token(t, v, "", ""); status != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("%d %v", status, b)
	}
	if status, _ := f.refreshPublic(t, rt, nil); status != 200 {
		t.Fatal("a refusal for another client spent the token")
	}
}

func checkRefreshExpiry(t *testing.T, f *fixture) {
	rt := f.redeemPublic(t)["refresh_token"].(string)
	f.e.clock.Advance(DefaultRefreshTokenTTL + time.Second)
	if status, b := f.refreshPublic(t, rt, nil); status != 400 || b["error"] != "invalid_grant" {
		t.Fatalf("%d %v", status, b)
	}
}

// TestRevocation revokes a refresh token (its grant goes) and an access
// token (only it goes), per RFC 7009.
func TestRevocation(t *testing.T) {
	f := newFixture(t, nil, nil)
	revoke := func(tok string, clientID string) int {
		t.Helper()
		status, _, err := postForm(f.e.client(), asIssuer+"/revoke", url.Values{"token": {tok}, "client_id": {clientID}}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	code, verifier := f.code(t, pubID, pubRedir, nil)
	_, b := f.token(t, exchange(code, verifier), "", "")
	at, rt := b["access_token"].(string), b["refresh_token"].(string)
	if s := revoke(rt, pub2ID); s != http.StatusBadRequest {
		t.Fatalf("revocation by another client: %d", s)
	}
	if s := revoke("garbage", pubID); s != http.StatusOK {
		t.Fatalf("unknown token: %d, want 200 (RFC 7009 §2.2)", s)
	}
	if s := revoke(rt, pubID); s != http.StatusOK {
		t.Fatalf("revoke: %d", s)
	}
	if s, _ := f.userinfo(t, at); s != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked grant: %d", s)
	}

	code, verifier = f.code(t, pubID, pubRedir, nil)
	_, b = f.token(t, exchange(code, verifier), "", "")
	at = b["access_token"].(string)
	if s := revoke(at, pubID); s != http.StatusOK {
		t.Fatalf("revoke access token: %d", s)
	}
	if s, _ := f.userinfo(t, at); s != http.StatusUnauthorized {
		t.Fatalf("revoked access token: %d", s)
	}
	if s, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b["refresh_token"].(string)}, "client_id": {pubID}}, "", ""); s != http.StatusOK {
		t.Fatalf("the refresh token should survive an access token revocation: %d", s)
	}
}

// TestUserinfoRefusals covers the bearer checks of the UserInfo endpoint.
func TestUserinfoRefusals(t *testing.T) {
	f := newFixture(t, nil, nil)
	code, verifier := f.code(t, pubID, pubRedir, set("scope", "files:read"))
	_, b := f.token(t, exchange(code, verifier), "", "")
	noOpenID := b["access_token"].(string)

	resp, err := f.e.client().Get(asIssuer + "/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
		t.Fatalf("no token: %d %q, want 401 without an error code (RFC 6750 §3.1)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if s, h := f.userinfo(t, noOpenID); s != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("no openid scope: %d %q", s, h.Get("WWW-Authenticate"))
	}
	if s, _ := f.userinfo(t, "not.a.jwt"); s != 401 {
		t.Fatalf("garbage: %d", s)
	}
	// A token signed by another server's key is refused.
	other := newFixture(t, nil, nil)
	code, verifier = other.code(t, pubID, pubRedir, nil)
	_, b = other.token(t, exchange(code, verifier), "", "")
	if s, _ := f.userinfo(t, b["access_token"].(string)); s != 401 {
		t.Fatalf("foreign token: %d", s)
	}
}
