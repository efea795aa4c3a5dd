package mockas

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/faults"
)

const ctlSecret = "control-secret"

// ctlFixture is the fixture with the control API on.
func ctlFixture(t *testing.T, mutate func(*Config)) *fixture {
	return newFixture(t, func(c *Config) {
		c.ControlSecret = ctlSecret
		if mutate != nil {
			mutate(c)
		}
	}, nil)
}

// ctl sends a control request with the secret over HTTPS and returns the
// status and the raw body.
func (f *fixture) ctl(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, asIssuer+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(control.SecretHeader, "Bearer "+ctlSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ctlJSON is ctl decoding a JSON object answer.
func (f *fixture) ctlJSON(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	status, b := f.ctl(t, method, path, body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %d %q is not a JSON object: %v", method, path, status, b, err)
		}
	}
	return status, m
}

// TestControlAPIGuard checks that every control endpoint needs the secret,
// that none exists without one, and that control requests are not
// recorded.
func TestControlAPIGuard(t *testing.T) {
	f := ctlFixture(t, nil)
	off := newFixture(t, nil, nil)
	paths := []string{"events", "faults", "settings", "rotate-key", "revoke-user", "counters", "nope"}
	for _, p := range paths {
		resp, err := f.e.client().Get(asIssuer + "/.test/" + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without the secret: %d, want 401", p, resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, asIssuer+"/.test/"+p, nil)
		req.Header.Set(control.SecretHeader, "Bearer wrong")
		resp, err = f.e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong secret: %d, want 401", p, resp.StatusCode)
		}
		if s, _ := off.ctl(t, http.MethodGet, "/.test/"+p, ""); s != http.StatusNotFound {
			t.Errorf("%s on a server without a control secret: %d, want 404", p, s)
		}
	}
	if s, b := f.ctlJSON(t, http.MethodGet, "/.test/nope", ""); s != http.StatusNotFound || b["error"] != "not_found" {
		t.Errorf("unknown control path: %d %v", s, b)
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/.test/events", ""},
		{http.MethodGet, "/.test/faults", ""},
		{http.MethodGet, "/.test/settings", ""},
		{http.MethodPatch, "/.test/settings", `{"cimd":true}`},
		{http.MethodPost, "/.test/rotate-key", ""},
		{http.MethodPost, "/.test/revoke-user", `{"subject":"alice"}`},
		{http.MethodGet, "/.test/counters", ""},
	} {
		if s, b := f.ctl(t, c.method, c.path, c.body); s != http.StatusOK {
			t.Errorf("%s %s: %d %s", c.method, c.path, s, b)
		}
	}
	if evs := f.s.Recorder().Events(); len(evs) != 0 {
		t.Errorf("control requests were recorded: %+v", evs)
	}
}

// TestFaultsControlAPI fails the token endpoint twice with 503 and drops a
// JWKS connection, over HTTP/2 and HTTP/1.1, through /.test/faults, and
// checks the fault events and that the next request is served.
func TestFaultsControlAPI(t *testing.T) {
	f := ctlFixture(t, nil)
	checkFaultStatus(t, f)
	checkFaultDrop(t, f)
	checkFaultDelay(t, f)
	checkFaultRules(t, f)
}

// checkFaultStatus answers two token requests with 503, then serves the
// third.
func checkFaultStatus(t *testing.T, f *fixture) {
	t.Helper()
	if s, b := f.ctl(t, http.MethodPost, "/.test/faults", `{"path":"/token","count":2,"status":503}`); s != http.StatusCreated {
		t.Fatalf("add rule: %d %s", s, b)
	}
	for i, want := range []int{503, 503, 400} {
		status, body := f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {pubID}}, "", "")
		if status != want {
			t.Fatalf("token request %d: %d %v, want %d", i+1, status, body, want)
		}
		if want == 503 && body["error"] != "injected_fault" {
			t.Fatalf("token request %d: %v", i+1, body)
		}
	}
	if got := f.s.Counters(); got["fault"] != 2 || got["token"] != 1 {
		t.Fatalf("counters %v, want 2 faults and 1 token", got)
	}
	if ev := lastEvent(f.s, "fault"); ev.Status != 503 || ev.Path != "/token" || ev.Method != http.MethodPost || ev.Detail["outcome"] != "status" {
		t.Errorf("fault event %+v", ev)
	}
}

// checkFaultDrop drops a JWKS connection over HTTP/2 and over HTTP/1.1;
// the next request on the same client is served.
func checkFaultDrop(t *testing.T, f *fixture) {
	t.Helper()
	h1 := f.e.transport.Clone()
	h1.ForceAttemptHTTP2 = false
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	t.Cleanup(h1.CloseIdleConnections)
	for _, tc := range []struct {
		name  string
		c     *http.Client
		proto int
	}{
		{"HTTP/2", f.e.client(), 2},
		{"HTTP/1.1", &http.Client{Transport: h1, Timeout: 10 * time.Second}, 1},
	} {
		t.Run("drop over "+tc.name, func(t *testing.T) {
			if s, b := f.ctl(t, http.MethodPost, "/.test/faults", `{"path":"/jwks","count":1,"drop":true}`); s != http.StatusCreated {
				t.Fatalf("add rule: %d %s", s, b)
			}
			if resp, err := tc.c.Get(asIssuer + "/jwks"); err == nil {
				resp.Body.Close()
				t.Fatalf("dropped request answered %d", resp.StatusCode)
			}
			if ev := lastEvent(f.s, "fault"); ev.Path != "/jwks" || ev.Status != 0 || ev.Detail["outcome"] != "dropped" {
				t.Errorf("fault event %+v", ev)
			}
			resp, err := tc.c.Get(asIssuer + "/jwks")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != tc.proto {
				t.Fatalf("after the drop: %d over HTTP/%d", resp.StatusCode, resp.ProtoMajor)
			}
		})
	}
}

// checkFaultDelay checks that a delay is latency only: the request is
// served and recorded as usual.
func checkFaultDelay(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.s.Faults().Add(faults.Rule{Path: "/jwks", Count: 1, Delay: "1ms"}); err != nil {
		t.Fatal(err)
	}
	n := f.s.Counters()["fault"]
	if s, _, _ := getJSON(f.e.client(), asIssuer+"/jwks"); s != 200 {
		t.Fatalf("delayed request: %d", s)
	}
	if got := f.s.Counters()["fault"]; got != n {
		t.Errorf("a delayed request was recorded as a fault")
	}
}

// checkFaultRules checks that bad rules are refused, DELETE clears, and the
// control API itself is never faulted.
func checkFaultRules(t *testing.T, f *fixture) {
	t.Helper()
	for _, bad := range []string{`{"path":"token","status":503}`, `{"path":"/token"}`, `{"path":"/token","status":503,"drop":true}`, `{"path":"/token","status":503,"colour":1}`} {
		if s, _ := f.ctl(t, http.MethodPost, "/.test/faults", bad); s != http.StatusBadRequest {
			t.Errorf("rule %s: %d, want 400", bad, s)
		}
	}
	if s, b := f.ctl(t, http.MethodPost, "/.test/faults", `{"path":"/*","status":500}`); s != http.StatusCreated {
		t.Fatalf("add rule: %d %s", s, b)
	}
	if s, _ := f.ctl(t, http.MethodGet, "/.test/settings", ""); s != 200 {
		t.Fatalf("control API faulted: %d", s)
	}
	if s, _, _ := getJSON(f.e.client(), asIssuer+"/jwks"); s != 500 {
		t.Fatalf("catch-all rule: %d", s)
	}
	if s, _ := f.ctl(t, http.MethodDelete, "/.test/faults", ""); s != http.StatusNoContent {
		t.Fatal(s)
	}
	if s, _, _ := getJSON(f.e.client(), asIssuer+"/jwks"); s != 200 {
		t.Fatalf("after DELETE: %d", s)
	}
}

// settingsOf reads /.test/settings.
func (f *fixture) settingsOf(t *testing.T) map[string]any {
	t.Helper()
	s, m := f.ctlJSON(t, http.MethodGet, "/.test/settings", "")
	if s != 200 {
		t.Fatalf("GET settings: %d %v", s, m)
	}
	return m
}

// TestSettingsControlAPI changes lifetimes and switches at run time and
// checks their effect on tokens, codes and the metadata.
func TestSettingsControlAPI(t *testing.T) {
	f := ctlFixture(t, nil)
	want := map[string]any{"access_token_ttl": "1h0m0s", "refresh_token_ttl": "24h0m0s", "code_ttl": "1m0s", "cimd": true, "dcr": false, "dpop": false, "dpop_nonce": false}
	if diff := cmp.Diff(want, f.settingsOf(t)); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
	s, got := f.ctlJSON(t, http.MethodPatch, "/.test/settings", `{"access_token_ttl":"90s","code_ttl":"10s","refresh_token_ttl":"2m","cimd":false,"dcr":true}`)
	want = map[string]any{"access_token_ttl": "1m30s", "refresh_token_ttl": "2m0s", "code_ttl": "10s", "cimd": false, "dcr": true, "dpop": false, "dpop_nonce": false}
	if s != 200 {
		t.Fatalf("PATCH: %d %v", s, got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("PATCH answer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Settings{AccessTokenTTL: 90 * time.Second, RefreshTokenTTL: 2 * time.Minute, CodeTTL: 10 * time.Second, DCR: true}, f.s.Settings()); diff != "" {
		t.Fatalf("Settings() (-want +got):\n%s", diff)
	}

	_, meta, _ := getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
	if _, ok := meta["client_id_metadata_document_supported"]; ok || meta["registration_endpoint"] != asIssuer+"/register" {
		t.Errorf("metadata does not follow the settings: cimd %v, registration_endpoint %v", meta["client_id_metadata_document_supported"], meta["registration_endpoint"])
	}
	_, challenge := pkce("s")
	if p := f.get(t, authURL(authParams(cimdURL, cimdRedir, challenge))); p.status != 400 || !strings.Contains(elementText(p.body, "error_description"), "does not accept Client ID Metadata Documents") {
		t.Errorf("CIMD client while CIMD is off: %d %s", p.status, elementText(p.body, "error_description"))
	}
	if s, _ := f.register(t, http.MethodPost, "application/json", publicRegistration()); s != http.StatusCreated {
		t.Errorf("DCR after switching it on: %d", s)
	}

	// The new lifetimes apply to what is issued next.
	code, verifier := f.code(t, pubID, pubRedir, nil)
	f.e.clock.Advance(11 * time.Second)
	if s, b := f.token(t, exchange(code, verifier), "", ""); s != 400 || !strings.Contains(b["error_description"].(string), "expired") {
		t.Errorf("code after 11s with code_ttl 10s: %d %v", s, b)
	}
	code, verifier = f.code(t, pubID, pubRedir, nil)
	s, b := f.token(t, exchange(code, verifier), "", "")
	if s != 200 || b["expires_in"] != float64(90) {
		t.Fatalf("token: %d %v", s, b)
	}
	if c := checkAccessToken(t, f.e, b["access_token"].(string)); c.Expiry.Time().Sub(c.IssuedAt.Time()) != 90*time.Second {
		t.Errorf("exp - iat = %v, want 90s", c.Expiry.Time().Sub(c.IssuedAt.Time()))
	}
	f.e.clock.Advance(2*time.Minute + time.Second)
	if s, b := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b["refresh_token"].(string)}, "client_id": {pubID}}, "", ""); s != 400 || b["error"] != "invalid_grant" {
		t.Errorf("refresh token after 2m1s with refresh_token_ttl 2m: %d %v", s, b)
	}

	// Switching back.
	if s, _ := f.ctlJSON(t, http.MethodPatch, "/.test/settings", `{"dcr":false,"cimd":true}`); s != 200 {
		t.Fatal(s)
	}
	if s, _ := f.register(t, http.MethodPost, "application/json", publicRegistration()); s != http.StatusNotFound {
		t.Errorf("DCR after switching it off: %d", s)
	}
	_, meta, _ = getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
	if _, ok := meta["registration_endpoint"]; ok || meta["client_id_metadata_document_supported"] != true {
		t.Errorf("metadata after switching back: %v %v", meta["registration_endpoint"], meta["client_id_metadata_document_supported"])
	}

	// In process: SetSettings refuses a non-positive lifetime.
	st := f.s.Settings()
	st.CodeTTL = 0
	if err := f.s.SetSettings(st); err == nil || !strings.Contains(err.Error(), "code_ttl 0s must be positive") {
		t.Errorf("SetSettings with CodeTTL 0: %v", err)
	}
}

// TestSettingsRefusals sends one bad settings request per case: 400 (or
// 405) with a precise error, and the settings unchanged.
func TestSettingsRefusals(t *testing.T) {
	f := ctlFixture(t, nil)
	before := f.settingsOf(t)
	for _, tc := range []struct {
		name, method, body string
		status             int
		desc               string
	}{
		{"unknown field", http.MethodPatch, `{"access_token_ttl":"5m","acess_token_ttl":"5m"}`, 400, `unknown field "acess_token_ttl"`},
		{"bad duration", http.MethodPatch, `{"access_token_ttl":"5 minutes","cimd":false}`, 400, `access_token_ttl "5 minutes" is not a Go duration`},
		{"duration without unit", http.MethodPatch, `{"code_ttl":"60"}`, 400, `code_ttl "60" is not a Go duration`},
		{"duration as a number", http.MethodPatch, `{"code_ttl":60}`, 400, "cannot unmarshal number"},
		{"zero duration", http.MethodPatch, `{"refresh_token_ttl":"0s","dcr":true}`, 400, "refresh_token_ttl 0s must be positive"},
		{"negative duration", http.MethodPatch, `{"code_ttl":"-1m"}`, 400, "code_ttl -1m0s must be positive"},
		{"switch as a string", http.MethodPatch, `{"cimd":"no"}`, 400, "cannot unmarshal string"},
		{"not JSON", http.MethodPatch, `cimd=false`, 400, "invalid character"},
		{"an array", http.MethodPatch, `[]`, 400, "cannot unmarshal array"},
		{"two objects", http.MethodPatch, `{"cimd":false}{"dcr":true}`, 400, "more than one JSON value"},
		{"empty body", http.MethodPatch, ``, 400, "the body is empty"},
		{"PUT", http.MethodPut, `{"cimd":false}`, 405, "GET and PATCH"},
		{"nonce without DPoP", http.MethodPatch, `{"dpop_nonce":true}`, 400, "dpop_nonce needs dpop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := f.ctlJSON(t, tc.method, "/.test/settings", tc.body)
			desc, _ := b["error_description"].(string)
			if status != tc.status || b["error"] != "invalid_request" || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want %d invalid_request containing %q", status, b, tc.status, tc.desc)
			}
			if diff := cmp.Diff(before, f.settingsOf(t)); diff != "" {
				t.Errorf("a refused request changed the settings (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRotateKeyControlAPI rotates the signing key: new tokens carry the new
// kid, the JWKS publishes both, and tokens of the old key still verify.
func TestRotateKeyControlAPI(t *testing.T) {
	f := ctlFixture(t, nil)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	_, old := f.token(t, exchange(code, verifier), "", "")
	oldKid := f.s.JWKS().Keys[0].KeyID
	s, b := f.ctlJSON(t, http.MethodPost, "/.test/rotate-key", "")
	if s != 200 || b["keys"] != float64(2) || b["kid"] == oldKid || b["kid"] == "" {
		t.Fatalf("rotate: %d %v", s, b)
	}
	keys := fetchJWKS(t, f.e.client(), asIssuer+"/jwks")
	if len(keys.Keys) != 2 || keys.Keys[0].KeyID != oldKid || keys.Keys[1].KeyID != b["kid"] {
		t.Fatalf("JWKS after rotation: %+v", keys.Keys)
	}
	code, verifier = f.code(t, pubID, pubRedir, nil)
	_, fresh := f.token(t, exchange(code, verifier), "", "")
	if kid := kidOf(t, fresh["access_token"].(string)); kid != b["kid"] {
		t.Errorf("new token signed with kid %q, want %q", kid, b["kid"])
	}
	for _, tok := range []map[string]any{old, fresh} {
		if s, _ := f.userinfo(t, tok["access_token"].(string)); s != 200 {
			t.Errorf("userinfo with a token of kid %s: %d", kidOf(t, tok["access_token"].(string)), s)
		}
	}
	if s, _ := f.ctl(t, http.MethodGet, "/.test/rotate-key", ""); s != http.StatusMethodNotAllowed {
		t.Errorf("GET rotate-key: %d", s)
	}
}

// kidOf returns the kid of a JWS without verifying it.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.NewDecoder(base64URLReader(h)).Decode(&hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

// TestRevokeUserControlAPI revokes every grant of alice: her access tokens
// are refused, her refresh tokens and pending code fail, her consents are
// forgotten, and bob and the client's own grant are untouched.
func TestRevokeUserControlAPI(t *testing.T) {
	f := ctlFixture(t, nil)
	sc := newRevokeScene(t, f)

	s, got := f.ctlJSON(t, http.MethodPost, "/.test/revoke-user", `{"subject":"alice"}`)
	want := map[string]any{"subject": "alice", "grants": float64(2), "access_tokens": float64(3), "refresh_tokens": float64(2), "codes": float64(1), "consents": float64(2)}
	if s != 200 {
		t.Fatalf("revoke-user: %d %v", s, got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("revoke-user answer (-want +got):\n%s", diff)
	}
	sc.checkAliceRevoked(t, f)
	sc.checkOthersKept(t, f)
	// Consent was forgotten: the next authorization asks again.
	_, challenge := pkce("again")
	p, err := f.b.get(authURL(authParams(pubID, pubRedir, challenge)))
	if err != nil || p.status != 200 || !strings.Contains(p.body, `name="decision"`) {
		t.Errorf("authorization after revoke-user does not ask for consent: %v %d", err, p.status)
	}

	// A client id is a subject too (its client_credentials grants).
	if s, got := f.ctlJSON(t, http.MethodPost, "/.test/revoke-user", `{"subject":"conf-app"}`); s != 200 || got["grants"] != float64(1) || got["access_tokens"] != float64(1) {
		t.Errorf("revoke-user conf-app: %d %v", s, got)
	}
	if _, err := f.s.verifyAccess(sc.service["access_token"].(string)); err == nil {
		t.Error("the client's own token survived revoke-user of its client id")
	}
	// Again: a known subject with nothing left answers zero counts.
	s, got = f.ctlJSON(t, http.MethodPost, "/.test/revoke-user", `{"subject":"alice"}`)
	if diff := cmp.Diff(map[string]any{"subject": "alice", "grants": float64(0), "access_tokens": float64(0), "refresh_tokens": float64(0), "codes": float64(0), "consents": float64(0)}, got); s != 200 || diff != "" {
		t.Errorf("second revoke-user: %d (-want +got):\n%s", s, diff)
	}
}

// revokeScene is what TestRevokeUserControlAPI revokes, or must not:
// alice's grants through a public and a confidential client (the public
// one refreshed once), a code she has not redeemed yet, bob's grant and the
// confidential client's own client_credentials token.
type revokeScene struct {
	alicePub, aliceConf, aliceRotated, bob, service map[string]any
	pendingCode, pendingVerifier                    string
}

func newRevokeScene(t *testing.T, f *fixture) *revokeScene {
	t.Helper()
	sc := &revokeScene{
		alicePub:  grantFor(t, f, pubID, pubRedir, "alice"),
		aliceConf: grantFor(t, f, confID, confRedir, "alice"),
	}
	// One rotation: the spent refresh token does not count again.
	s, rotated := refreshFor(t, f, sc.alicePub, pubID)
	if s != 200 {
		t.Fatal(s)
	}
	sc.aliceRotated = rotated
	sc.bob = grantFor(t, f, pubID, pubRedir, "bob")
	_, sc.service = f.token(t, ccRequest(), confID, confSecret)
	sc.pendingCode, sc.pendingVerifier = f.code(t, pubID, pubRedir, nil) // alice, signed in and approved already
	return sc
}

// checkAliceRevoked checks that none of alice's tokens and codes works.
func (sc *revokeScene) checkAliceRevoked(t *testing.T, f *fixture) {
	t.Helper()
	for name, tok := range map[string]map[string]any{"alice/public": sc.alicePub, "alice/confidential": sc.aliceConf, "alice/rotated": sc.aliceRotated} {
		if s, _ := f.userinfo(t, tok["access_token"].(string)); s != http.StatusUnauthorized {
			t.Errorf("%s access token after revoke-user: userinfo %d, want 401", name, s)
		}
	}
	if s, b := refreshFor(t, f, sc.aliceRotated, pubID); s != 400 || b["error"] != "invalid_grant" || !strings.Contains(b["error_description"].(string), "revoked") {
		t.Errorf("alice's refresh token after revoke-user: %d %v", s, b)
	}
	if s, b := refreshFor(t, f, sc.aliceConf, confID); s != 400 || b["error"] != "invalid_grant" {
		t.Errorf("alice's confidential refresh token after revoke-user: %d %v", s, b)
	}
	if s, b := f.token(t, exchange(sc.pendingCode, sc.pendingVerifier), "", ""); s != 400 || b["error"] != "invalid_grant" {
		t.Errorf("alice's pending code after revoke-user: %d %v", s, b)
	}
}

// checkOthersKept checks that bob's tokens and the client's own still work.
func (sc *revokeScene) checkOthersKept(t *testing.T, f *fixture) {
	t.Helper()
	if s, _ := f.userinfo(t, sc.bob["access_token"].(string)); s != 200 {
		t.Errorf("bob's access token after alice's revocation: %d", s)
	}
	if s, _ := refreshFor(t, f, sc.bob, pubID); s != 200 {
		t.Errorf("bob's refresh token after alice's revocation: %d", s)
	}
	if _, err := f.s.verifyAccess(sc.service["access_token"].(string)); err != nil {
		t.Errorf("the client's own token after alice's revocation: %v", err)
	}
}

// grantFor signs user in through clientID (public, or confID with its
// secret), approves and redeems the code; it returns the token response.
func grantFor(t *testing.T, f *fixture, clientID, redirect, user string) map[string]any {
	t.Helper()
	b := f.e.browser("auth.provider.com")
	verifier, challenge := pkce(clientID + user)
	cb, err := b.authorizeAll(authURL(authParams(clientID, redirect, challenge)), user, user+"-password")
	if err != nil {
		t.Fatal(err)
	}
	v := exchange(cb.Query().Get("code"), verifier)
	v.Set("redirect_uri", redirect)
	basic := [2]string{}
	if clientID == confID {
		v.Del("client_id")
		basic = [2]string{confID, confSecret}
	} else {
		v.Set("client_id", clientID)
	}
	status, tok := f.token(t, v, basic[0], basic[1])
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	return tok
}

// refreshFor redeems tok's refresh token as clientID.
func refreshFor(t *testing.T, f *fixture, tok map[string]any, clientID string) (int, map[string]any) {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	if clientID == confID {
		return f.token(t, v, confID, confSecret)
	}
	v.Set("client_id", clientID)
	return f.token(t, v, "", "")
}

// TestRevokeUserRefusals covers the bad requests of /.test/revoke-user;
// none changes the state.
func TestRevokeUserRefusals(t *testing.T) {
	f := ctlFixture(t, nil)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	if s, _ := f.token(t, exchange(code, verifier), "", ""); s != 200 {
		t.Fatal(s)
	}
	for _, tc := range []struct {
		name, method, body string
		status             int
		code, desc         string
	}{
		{"unknown subject", http.MethodPost, `{"subject":"mallory"}`, 404, "unknown_subject", `unknown subject "mallory"`},
		{"subject differs in case", http.MethodPost, `{"subject":"Alice"}`, 404, "unknown_subject", `unknown subject "Alice"`},
		{"empty subject", http.MethodPost, `{"subject":""}`, 400, "invalid_request", "subject is missing"},
		{"no subject", http.MethodPost, `{}`, 400, "invalid_request", "subject is missing"},
		{"unknown field", http.MethodPost, `{"subject":"alice","all":true}`, 400, "invalid_request", `unknown field "all"`},
		{"not JSON", http.MethodPost, `subject=alice`, 400, "invalid_request", "invalid character"},
		{"GET", http.MethodGet, ``, 405, "invalid_request", "POST only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.s.stats()
			s, b := f.ctlJSON(t, tc.method, "/.test/revoke-user", tc.body)
			desc, _ := b["error_description"].(string)
			if s != tc.status || b["error"] != tc.code || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want %d %s containing %q", s, b, tc.status, tc.code, tc.desc)
			}
			if diff := cmp.Diff(before, f.s.stats()); diff != "" {
				t.Errorf("state changed (-before +after):\n%s", diff)
			}
		})
	}
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	for _, fam := range f.s.st.families {
		if fam.revoked {
			t.Errorf("a refused revoke-user revoked a grant: %s", fam.revokedWhy)
		}
	}
}

// TestCountersControlAPI counts events by kind; control requests do not
// count, and DELETE /.test/events resets the counters with the events.
func TestCountersControlAPI(t *testing.T) {
	f := ctlFixture(t, nil)
	for range 3 {
		if s, _, _ := getJSON(f.e.client(), asIssuer+"/jwks"); s != 200 {
			t.Fatal(s)
		}
	}
	code, verifier := f.code(t, pubID, pubRedir, nil)
	f.token(t, exchange(code, verifier), "", "")
	f.token(t, exchange(code, verifier), "", "") // reuse: refused, still counted
	f.ctl(t, http.MethodGet, "/.test/settings", "")
	s, b := f.ctl(t, http.MethodGet, "/.test/counters", "")
	var got map[string]int
	if err := json.Unmarshal(b, &got); s != 200 || err != nil {
		t.Fatalf("counters: %d %s %v", s, b, err)
	}
	want := map[string]int{"jwks": 3, "authorize": 1, "login": 1, "consent": 2, "token": 2} // consent: the page and the decision
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.s.Counters()); diff != "" {
		t.Errorf("Counters() (-want +got):\n%s", diff)
	}
	if s, _ := f.ctl(t, http.MethodDelete, "/.test/events", ""); s != http.StatusNoContent {
		t.Fatal(s)
	}
	if s, b := f.ctl(t, http.MethodGet, "/.test/counters", ""); s != 200 || strings.TrimSpace(string(b)) != "{}" {
		t.Errorf("counters after DELETE /.test/events: %d %s", s, b)
	}
	if s, _ := f.ctl(t, http.MethodPost, "/.test/counters", "{}"); s != http.StatusMethodNotAllowed {
		t.Errorf("POST counters: %d", s)
	}
}

// TestControlClient drives the control API with the harness's client.
func TestControlClient(t *testing.T) {
	f := ctlFixture(t, nil)
	cc := &control.Client{BaseURL: asIssuer, Secret: ctlSecret, HTTP: f.e.client()}
	var st map[string]any
	if err := cc.Do(context.Background(), http.MethodPatch, asIssuer+"/.test/settings", strings.NewReader(`{"dcr":true}`), &st); err != nil || st["dcr"] != true {
		t.Fatalf("PATCH settings: %v %v", err, st)
	}
	if err := cc.Do(context.Background(), http.MethodPatch, asIssuer+"/.test/settings", strings.NewReader(`{"dcr":"yes"}`), nil); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad PATCH: %v", err)
	}
}

func base64URLReader(s string) io.Reader {
	return base64.NewDecoder(base64.RawURLEncoding, strings.NewReader(s))
}
