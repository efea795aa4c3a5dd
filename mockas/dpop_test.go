package mockas

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
)

const tokenURL = asIssuer + "/token"

// dpopFixture is the control fixture with DPoP switched on through the
// control API, as a scenario does.
func dpopFixture(t *testing.T, patch string) *fixture {
	t.Helper()
	f := ctlFixture(t, nil)
	if s, b := f.ctlJSON(t, http.MethodPatch, "/.test/settings", patch); s != http.StatusOK {
		t.Fatalf("PATCH %s: %d %v", patch, s, b)
	}
	return f
}

func newSigner(t *testing.T) *dpopcheck.Signer {
	t.Helper()
	s, err := dpopcheck.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// proofFor is a valid proof of s for the token endpoint now.
func (f *fixture) proofFor(t *testing.T, s *dpopcheck.Signer, nonce string) string {
	t.Helper()
	p, err := s.Proof(http.MethodPost, tokenURL, "", nonce, f.e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenAnswer is a token endpoint answer.
type tokenAnswer struct {
	status int
	body   map[string]any
	header http.Header
}

// dpopToken posts a token request with the given DPoP header values (none
// for a request without proof) and basic credentials when user is set.
func (f *fixture) dpopToken(t *testing.T, v url.Values, user, pass string, proofs ...string) tokenAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := f.e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", resp.StatusCode, b, err)
	}
	return a
}

// wantBound checks a successful answer bound to jkt ("" for a Bearer
// token) and returns it.
func (f *fixture) wantBound(t *testing.T, a tokenAnswer, jkt string) tokenAnswer {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("got %d %v, want 200", a.status, a.body)
	}
	c := checkAccessToken(t, f.e, a.body["access_token"].(string))
	gotJKT := ""
	if c.Cnf != nil {
		gotJKT = c.Cnf.JKT
	}
	wantType := "Bearer"
	if jkt != "" {
		wantType = "DPoP"
	}
	if a.body["token_type"] != wantType || gotJKT != jkt {
		t.Errorf("token_type %v, cnf.jkt %q; want %s, %q", a.body["token_type"], gotJKT, wantType, jkt)
	}
	return a
}

func wantRefused(t *testing.T, a tokenAnswer, code, desc string) {
	t.Helper()
	if a.status != http.StatusBadRequest || a.body["error"] != code || a.body["error_description"] != desc {
		t.Errorf("got %d %v\nwant 400 %s: %s", a.status, a.body, code, desc)
	}
}

// TestDPoPMetadata offers dpop_signing_alg_values_supported only while
// DPoP is on.
func TestDPoPMetadata(t *testing.T) {
	f := ctlFixture(t, nil)
	meta := func() map[string]any {
		_, m, err := getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if v, ok := meta()["dpop_signing_alg_values_supported"]; ok {
		t.Errorf("DPoP off: metadata offers %v", v)
	}
	f.ctlJSON(t, http.MethodPatch, "/.test/settings", `{"dpop":true}`)
	if diff := cmp.Diff([]any{"ES256"}, meta()["dpop_signing_alg_values_supported"]); diff != "" {
		t.Errorf("DPoP on (-want +got):\n%s", diff)
	}
}

// TestDPoPBindsEveryGrant binds the tokens of each grant to the proof's key,
// and gives a request without a proof a Bearer token.
func TestDPoPBindsEveryGrant(t *testing.T) {
	f := dpopFixture(t, `{"dpop":true}`)
	key := newSigner(t)

	code, verifier := f.code(t, pubID, pubRedir, nil)
	a := f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", "", f.proofFor(t, key, "")), key.JKT())
	ev := lastEvent(f.s, "token")
	want := map[string]string{"dpop_proof": "valid", "dpop_jkt": key.JKT(), "token_type": "DPoP"}
	for k, v := range want {
		if ev.Detail[k] != v {
			t.Errorf("event Detail[%s] = %q, want %q (%v)", k, ev.Detail[k], v, ev.Detail)
		}
	}
	if ev.Detail["dpop_jti"] == "" || ev.Detail["dpop_nonce"] != "" {
		t.Errorf("event: jti %q, nonce %q", ev.Detail["dpop_jti"], ev.Detail["dpop_nonce"])
	}

	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.body["refresh_token"].(string)}, "client_id": {pubID}}
	f.wantBound(t, f.dpopToken(t, refresh, "", "", f.proofFor(t, key, "")), key.JKT())

	f.wantBound(t, f.dpopToken(t, ccRequest(), confID, confSecret, f.proofFor(t, key, "")), key.JKT())

	code, verifier = f.code(t, pubID, pubRedir, nil)
	f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", ""), "")
	if ev := lastEvent(f.s, "token"); ev.Detail["dpop_proof"] != "" || ev.Detail["token_type"] != "Bearer" {
		t.Errorf("request without a proof: event %v", ev.Detail)
	}
}

// TestDPoPJWTBearerGrant binds a workload's token too.
func TestDPoPJWTBearerGrant(t *testing.T) {
	f, wk := workloadFixture(t, nil)
	st := f.s.Settings()
	st.DPoP = true
	if err := f.s.SetSettings(st); err != nil {
		t.Fatal(err)
	}
	key := newSigner(t)
	v := jwtBearerRequest(signWorkload(t, wk, workloadClaims(f.e.clock.Now())))
	f.wantBound(t, f.dpopToken(t, v, "", "", f.proofFor(t, key, "")), key.JKT())
}

// TestDPoPRefusals sends one bad proof per case: 400 with the exact error,
// and the code is still unredeemed afterwards.
func TestDPoPRefusals(t *testing.T) {
	f := dpopFixture(t, `{"dpop":true}`)
	key := newSigner(t)
	now := func() time.Time { return f.e.clock.Now() }
	sign := func(change func(map[string]any)) string {
		c := dpopcheck.Claims(http.MethodPost, tokenURL, "", "", now())
		change(c)
		p, err := key.Sign(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	used := f.proofFor(t, key, "")
	code, verifier := f.code(t, pubID, pubRedir, nil)
	f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", "", used), key.JKT())

	for _, tc := range []struct {
		name   string
		proofs func() []string
		desc   string
	}{
		{"two proofs", func() []string { return []string{f.proofFor(t, key, ""), f.proofFor(t, key, "")} },
			"the request carries 2 DPoP headers; RFC 9449 section 4.3 allows exactly one"},
		{"htu of the MCP server", func() []string {
			return []string{sign(func(c map[string]any) { c["htu"] = "https://remote-mcp.provider.com/mcp" })}
		}, "the proof's htu https://remote-mcp.provider.com/mcp is not the request's URI https://auth.provider.com/token"},
		{"htm GET", func() []string { return []string{sign(func(c map[string]any) { c["htm"] = "GET" })} },
			"the proof's htm 'GET' is not the request's method POST"},
		{"stale iat", func() []string {
			return []string{sign(func(c map[string]any) { c["iat"] = now().Add(-2 * time.Minute).Unix() })}
		},
			"the proof's iat 2026-03-01T11:58:00Z is more than 1m0s from now (2026-03-01T12:00:00Z)"},
		{"not a DPoP JWT", func() []string {
			p, _ := key.Sign(map[string]any{"typ": "JWT"}, dpopcheck.Claims(http.MethodPost, tokenURL, "", "", now()))
			return []string{p}
		}, "the proof's typ is 'JWT', not dpop+jwt (RFC 9449 section 4.2)"},
		{"replayed", func() []string { return []string{used} }, "the proof was used before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := f.code(t, pubID, pubRedir, nil)
			wantRefused(t, f.dpopToken(t, exchange(code, verifier), "", "", tc.proofs()...), "invalid_dpop_proof", tc.desc)
			ev := lastEvent(f.s, "token")
			if ev.Detail["dpop_proof"] != "invalid" || ev.Detail["error"] != "invalid_dpop_proof" {
				t.Errorf("event %v", ev.Detail)
			}
			f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", "", f.proofFor(t, key, "")), key.JKT())
		})
	}
}

// TestDPoPBoundRefreshToken refuses a refresh of a bound grant without a
// proof of its key, without spending the refresh token.
func TestDPoPBoundRefreshToken(t *testing.T) {
	f := dpopFixture(t, `{"dpop":true}`)
	key, other := newSigner(t), newSigner(t)
	code, verifier := f.code(t, pubID, pubRedir, nil)
	a := f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", "", f.proofFor(t, key, "")), key.JKT())
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.body["refresh_token"].(string)}, "client_id": {pubID}}

	wantRefused(t, f.dpopToken(t, refresh, "", "", f.proofFor(t, other, "")), "invalid_dpop_proof", "the refresh token is bound to another key")
	wantRefused(t, f.dpopToken(t, refresh, "", ""), "invalid_dpop_proof", "the refresh token is bound to a DPoP key, and the request carries no DPoP proof")
	a = f.wantBound(t, f.dpopToken(t, refresh, "", "", f.proofFor(t, key, "")), key.JKT())

	// The new refresh token is bound as well.
	refresh.Set("refresh_token", a.body["refresh_token"].(string))
	wantRefused(t, f.dpopToken(t, refresh, "", "", f.proofFor(t, other, "")), "invalid_dpop_proof", "the refresh token is bound to another key")

	// A Bearer grant refreshed with a proof becomes bound to its key.
	code, verifier = f.code(t, pubID, pubRedir, nil)
	a = f.wantBound(t, f.dpopToken(t, exchange(code, verifier), "", ""), "")
	refresh.Set("refresh_token", a.body["refresh_token"].(string))
	a = f.wantBound(t, f.dpopToken(t, refresh, "", "", f.proofFor(t, other, "")), other.JKT())
	refresh.Set("refresh_token", a.body["refresh_token"].(string))
	wantRefused(t, f.dpopToken(t, refresh, "", ""), "invalid_dpop_proof", "the refresh token is bound to a DPoP key, and the request carries no DPoP proof")
}

// TestDPoPNonce asks for the server's nonce, accepts it, names it in every
// answer, and refuses it once rotated.
func TestDPoPNonce(t *testing.T) {
	f := dpopFixture(t, `{"dpop":true,"dpop_nonce":true}`)
	key := newSigner(t)
	cc := func(proof string) tokenAnswer { return f.dpopToken(t, ccRequest(), confID, confSecret, proof) }

	a := cc(f.proofFor(t, key, ""))
	wantRefused(t, a, "use_dpop_nonce", "this server requires a DPoP nonce: send the proof again with the nonce of the DPoP-Nonce header")
	nonce := a.header.Get("DPoP-Nonce")
	if nonce == "" || nonce != f.s.DPoPNonce() {
		t.Fatalf("DPoP-Nonce %q, want the server's %q", nonce, f.s.DPoPNonce())
	}
	if ev := lastEvent(f.s, "token"); ev.Detail["error"] != "use_dpop_nonce" || ev.Detail["dpop_nonce"] != "" || ev.Detail["dpop_jkt"] != key.JKT() {
		t.Errorf("event %v", ev.Detail)
	}

	// Another refusal does not name the nonce.
	if a := f.dpopToken(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, confID, confSecret, f.proofFor(t, key, nonce)); a.status != 400 || a.header.Get("DPoP-Nonce") != "" {
		t.Errorf("invalid_scope: %d, DPoP-Nonce %q", a.status, a.header.Get("DPoP-Nonce"))
	}
	a = f.wantBound(t, cc(f.proofFor(t, key, nonce)), key.JKT())
	if a.header.Get("DPoP-Nonce") != nonce {
		t.Errorf("success without DPoP-Nonce: %v", a.header)
	}
	if ev := lastEvent(f.s, "token"); ev.Detail["dpop_nonce"] != "sent" {
		t.Errorf("event %v", ev.Detail)
	}

	s, b := f.ctlJSON(t, http.MethodPost, "/.test/rotate-dpop-nonce", "")
	if s != http.StatusOK || b["dpop_nonce"] == nonce || b["dpop_nonce"] != f.s.DPoPNonce() {
		t.Fatalf("rotate: %d %v", s, b)
	}
	a = cc(f.proofFor(t, key, nonce))
	wantRefused(t, a, "use_dpop_nonce", "the proof's nonce is not the current one: send the proof again with the nonce of the DPoP-Nonce header")
	if a.header.Get("DPoP-Nonce") != b["dpop_nonce"] {
		t.Errorf("DPoP-Nonce %q after rotation, want %v", a.header.Get("DPoP-Nonce"), b["dpop_nonce"])
	}
}

// TestDPoPOff leaves today's behaviour alone: a proof is neither checked
// nor binding, only noted.
func TestDPoPOff(t *testing.T) {
	f := ctlFixture(t, nil)
	key := newSigner(t)
	bad, err := key.Sign(map[string]any{"typ": "JWT"}, dpopcheck.Claims(http.MethodGet, "https://elsewhere.example/", "", "", time.Unix(0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	a := f.wantBound(t, f.dpopToken(t, ccRequest(), confID, confSecret, bad), "")
	if a.header.Get("DPoP-Nonce") != "" {
		t.Errorf("DPoP-Nonce while DPoP is off: %q", a.header.Get("DPoP-Nonce"))
	}
	if ev := lastEvent(f.s, "token"); ev.Detail["dpop_proof"] != "unverified" || ev.Detail["dpop_jkt"] != "" {
		t.Errorf("event %v", ev.Detail)
	}
}
