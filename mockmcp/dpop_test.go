package mockmcp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
)

const (
	dpopMissingHdr = `DPoP algs="ES256", resource_metadata="` + prmPathURL + `", ` + scopeParam
	dpopErrorHdrF  = `DPoP error="%s", error_description="%s", algs="ES256", resource_metadata="` + prmPathURL + `", ` + scopeParam
)

func dpopRefusal(code, desc string) wantChallenge {
	return wantChallenge{status: http.StatusUnauthorized, header: fmt.Sprintf(dpopErrorHdrF, code, desc), error: code}
}

func newSigner(t *testing.T) *dpopcheck.Signer {
	t.Helper()
	s, err := dpopcheck.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dpopEnv is an env whose server requires DPoP-bound tokens, switched on
// through the control API as a scenario does.
func dpopEnv(t *testing.T, patch string) *env {
	t.Helper()
	e := newEnv(t)
	if status, b := e.control(http.MethodPatch, "/.test/settings", patch); status != http.StatusOK {
		t.Fatalf("PATCH %s: %d %s", patch, status, b)
	}
	return e
}

// boundToken is a valid token bound to jkt, with its own jti.
func (e *env) boundToken(jkt, jti string) string {
	c := e.claims()
	c["cnf"] = map[string]any{"jkt": jkt}
	c["jti"] = jti
	return mint(e.t, e.key, c)
}

// proof is a valid proof of k for a request with tok to the MCP endpoint.
func (e *env) proof(k *dpopcheck.Signer, method, tok, nonce string) string {
	e.t.Helper()
	p, err := k.Proof(method, resourceURL, tok, nonce, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestDPoPAccepted presents a bound token with a proof on POST, GET and
// DELETE of one session, and records what a scenario reads.
func TestDPoPAccepted(t *testing.T) {
	e := dpopEnv(t, `{"dpop":true}`)
	key := newSigner(t)
	tok := e.boundToken(key.JKT(), "jti-bound")
	authz := "DPoP " + tok

	resp, b := e.post(authz, initializeBody, "DPoP", e.proof(key, http.MethodPost, tok, ""))
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s", resp.StatusCode, b)
	}
	if resp.Header.Get("DPoP-Nonce") != "" {
		t.Errorf("DPoP-Nonce without a nonce required: %q", resp.Header.Get("DPoP-Nonce"))
	}
	getProof := e.proof(key, http.MethodGet, tok, "")
	get, _ := http.NewRequest(http.MethodGet, resourceURL, nil)
	for k, v := range map[string]string{"Authorization": authz, "DPoP": getProof, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25", "Accept": "text/event-stream"} {
		get.Header.Set(k, v)
	}
	// The stream stays open: read the status, then hang up.
	if resp, err := e.client.Do(get); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET stream: %d", resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, resourceURL, nil)
	req.Header.Set("Authorization", authz)
	req.Header.Set("DPoP", e.proof(key, http.MethodDelete, tok, ""))
	req.Header.Set("Mcp-Session-Id", sid)
	if resp, b := e.do(req); resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d %s", resp.StatusCode, b)
	}

	evs := e.events(KindMCP)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	jtis := map[string]bool{}
	for _, ev := range evs {
		for k, want := range map[string]string{
			DetailAuthScheme: "DPoP", DetailTokenJKT: key.JKT(), DetailDPoPProof: "valid", DetailDPoPJKT: key.JKT(), DetailDPoPAth: "ok", DetailJTI: "jti-bound",
		} {
			if ev.Detail[k] != want {
				t.Errorf("%s event: %s = %q, want %q", ev.Method, k, ev.Detail[k], want)
			}
		}
		jtis[ev.Detail[DetailDPoPJTI]] = true
		if ev.Authorization != control.Fingerprint(tok) {
			t.Errorf("%s event: authorization %q, want the token's fingerprint", ev.Method, ev.Authorization)
		}
	}
	if len(jtis) != 3 || jtis[""] {
		t.Errorf("proof jtis %v, want 3 distinct", jtis)
	}

	// The control API keeps the last accepted credentials for a replay;
	// the events never hold them.
	status, body := e.control(http.MethodGet, "/.test/last-dpop", "")
	var last LastDPoP
	if status != http.StatusOK || json.Unmarshal(body, &last) != nil {
		t.Fatalf("last-dpop: %d %s", status, body)
	}
	if last.Method != http.MethodDelete || last.URL != resourceURL || last.Authorization != authz || last.DPoP != req.Header.Get("DPoP") {
		t.Errorf("last-dpop %+v", last)
	}
	_, all := e.control(http.MethodGet, "/.test/events", "")
	for _, secret := range []string{tok, getProof, strings.Split(getProof, ".")[2]} {
		if strings.Contains(string(all), secret) {
			t.Errorf("the events hold a credential %.20s...", secret)
		}
	}
}

// TestDPoPRefusals sends one bad presentation per case and checks the exact
// DPoP challenge.
func TestDPoPRefusals(t *testing.T) {
	e := dpopEnv(t, `{"dpop":true}`)
	key, other := newSigner(t), newSigner(t)
	n := 0
	bound := func() string { n++; return e.boundToken(key.JKT(), fmt.Sprintf("jti-%d", n)) }
	unbound := e.valid()
	sign := func(tok string, change func(map[string]any)) string {
		c := dpopcheck.Claims(http.MethodPost, resourceURL, tok, "", e.clock.Now())
		change(c)
		p, err := key.Sign(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	replayTok := bound()
	replayed := e.proof(key, http.MethodPost, replayTok, "")
	if resp, b := e.post("DPoP "+replayTok, initializeBody, "DPoP", replayed); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d %s", resp.StatusCode, b)
	}

	tests := []struct {
		name string
		send func() (authz string, hdr []string)
		want wantChallenge
	}{
		{"no credentials", func() (string, []string) { return "", nil },
			wantChallenge{status: 401, header: dpopMissingHdr, error: "unauthorized"}},
		{"bound token as a bearer token", func() (string, []string) { return "Bearer " + bound(), nil },
			invalidTokenDPoP("a DPoP-bound token was presented as a bearer token")},
		{"bound token as a bearer token, with a proof", func() (string, []string) {
			tok := bound()
			return "Bearer " + tok, []string{"DPoP", e.proof(key, http.MethodPost, tok, "")}
		}, invalidTokenDPoP("a DPoP-bound token was presented as a bearer token")},
		{"unbound token as a bearer token", func() (string, []string) { return "Bearer " + unbound, nil },
			invalidTokenDPoP("this server requires DPoP-bound tokens (RFC 9449): present one with Authorization: DPoP and a DPoP proof")},
		{"unbound token with a proof", func() (string, []string) {
			return "DPoP " + unbound, []string{"DPoP", e.proof(key, http.MethodPost, unbound, "")}
		}, invalidTokenDPoP("the token is not DPoP-bound: it has no cnf.jkt (RFC 9449 section 6)")},
		{"no proof", func() (string, []string) { return "DPoP " + bound(), nil },
			dpopRefusal("invalid_dpop_proof", "the request carries no DPoP header")},
		{"proof of another key", func() (string, []string) {
			tok := bound()
			return "DPoP " + tok, []string{"DPoP", e.proof(other, http.MethodPost, tok, "")}
		}, dpopRefusal("invalid_dpop_proof", "the proof's key is not the one the token is bound to")},
		{"no ath", func() (string, []string) {
			tok := bound()
			return "DPoP " + tok, []string{"DPoP", sign(tok, func(c map[string]any) { delete(c, "ath") })}
		}, dpopRefusal("invalid_dpop_proof", "the proof has no ath, and it came with an access token (RFC 9449 section 4.3)")},
		{"ath of another token", func() (string, []string) {
			tok := bound()
			return "DPoP " + tok, []string{"DPoP", e.proof(key, http.MethodPost, unbound, "")}
		}, dpopRefusal("invalid_dpop_proof", "the proof's ath is not the hash of the access token it came with")},
		{"htu of the proxy", func() (string, []string) {
			tok := bound()
			return "DPoP " + tok, []string{"DPoP", sign(tok, func(c map[string]any) { c["htu"] = "https://mcp.example.com/mcp" })}
		}, dpopRefusal("invalid_dpop_proof", "the proof's htu https://mcp.example.com/mcp is not the request's URI https://remote-mcp.provider.com/mcp")},
		{"htm of a GET", func() (string, []string) {
			tok := bound()
			return "DPoP " + tok, []string{"DPoP", e.proof(key, http.MethodGet, tok, "")}
		}, dpopRefusal("invalid_dpop_proof", "the proof's htm 'GET' is not the request's method POST")},
		{"replayed proof", func() (string, []string) { return "DPoP " + replayTok, []string{"DPoP", replayed} },
			dpopRefusal("invalid_dpop_proof", "the proof was used before")},
		{"scheme in lower case counts", func() (string, []string) { return "dpop " + bound(), nil },
			dpopRefusal("invalid_dpop_proof", "the request carries no DPoP header")},
		{"another scheme counts as none", func() (string, []string) { return "Basic YWxpY2U6c2VjcmV0", nil },
			wantChallenge{status: 401, header: dpopMissingHdr, error: "unauthorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authz, hdr := tt.send()
			resp, body := e.post(authz, initializeBody, hdr...)
			if err := checkRefused(resp, body, tt.want); err != nil {
				t.Error(err)
			}
		})
	}
}

// invalidTokenDPoP is invalidToken under a DPoP challenge.
func invalidTokenDPoP(desc string) wantChallenge { return dpopRefusal("invalid_token", desc) }

// TestDPoPNonce asks for the nonce, accepts it, names it on success, and
// asks again once it is rotated.
func TestDPoPNonce(t *testing.T) {
	e := dpopEnv(t, `{"dpop":true,"dpop_nonce":true}`)
	key := newSigner(t)
	tok := e.boundToken(key.JKT(), "jti-nonce")

	resp, body := e.post("DPoP "+tok, initializeBody, "DPoP", e.proof(key, http.MethodPost, tok, ""))
	if err := checkRefused(resp, body, dpopRefusal("use_dpop_nonce", "this server requires a DPoP nonce: send the proof again with the nonce of the DPoP-Nonce header")); err != nil {
		t.Fatal(err)
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" || nonce != e.srv.DPoPNonce() {
		t.Fatalf("DPoP-Nonce %q, want the server's", nonce)
	}
	resp, body = e.post("DPoP "+tok, initializeBody, "DPoP", e.proof(key, http.MethodPost, tok, nonce))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("with the nonce: %d, DPoP-Nonce %q: %s", resp.StatusCode, resp.Header.Get("DPoP-Nonce"), body)
	}
	evs := e.events(KindMCP)
	if evs[0].Detail[DetailError] != "use_dpop_nonce" || evs[0].Detail[DetailDPoPNonce] != "" || evs[1].Detail[DetailDPoPNonce] != "sent" {
		t.Errorf("events %v / %v", evs[0].Detail, evs[1].Detail)
	}
	if resp, _ := e.post("", initializeBody); resp.Header.Get("DPoP-Nonce") != "" {
		t.Errorf("a request without credentials learned the nonce: only use_dpop_nonce and success name it")
	}

	status, b := e.control(http.MethodPost, "/.test/rotate-dpop-nonce", "")
	if status != http.StatusOK || strings.Contains(string(b), nonce) {
		t.Fatalf("rotate: %d %s", status, b)
	}
	resp, body = e.post("DPoP "+tok, initializeBody, "DPoP", e.proof(key, http.MethodPost, tok, nonce))
	if err := checkRefused(resp, body, dpopRefusal("use_dpop_nonce", "the proof's nonce is not the current one: send the proof again with the nonce of the DPoP-Nonce header")); err != nil {
		t.Error(err)
	}
	if got := resp.Header.Get("DPoP-Nonce"); got == nonce || got != e.srv.DPoPNonce() {
		t.Errorf("DPoP-Nonce after rotation %q", got)
	}
}

// TestDPoPOffUnchanged keeps today's Bearer-only behaviour while DPoP is
// off: the DPoP scheme counts as no credentials, a bound token is accepted
// as a bearer token, and the events carry no DPoP keys.
func TestDPoPOffUnchanged(t *testing.T) {
	e := newEnv(t)
	key := newSigner(t)
	tok := e.boundToken(key.JKT(), "jti-off")
	resp, body := e.post("DPoP "+tok, initializeBody, "DPoP", e.proof(key, http.MethodPost, tok, ""))
	if err := checkRefused(resp, body, wantChallenge{status: 401, header: missingHdr, error: "unauthorized"}); err != nil {
		t.Error(err)
	}
	if resp, b := e.post("Bearer "+tok, initializeBody); resp.StatusCode != http.StatusOK {
		t.Errorf("bound token as a bearer token while DPoP is off: %d %s", resp.StatusCode, b)
	}
	for _, ev := range e.events(KindMCP) {
		for _, k := range []string{DetailAuthScheme, DetailTokenJKT, DetailDPoPProof, DetailDPoPJKT} {
			if v, ok := ev.Detail[k]; ok {
				t.Errorf("event has %s=%q while DPoP is off", k, v)
			}
		}
	}
	if status, _ := e.control(http.MethodGet, "/.test/last-dpop", ""); status != http.StatusNotFound {
		t.Errorf("last-dpop without a DPoP request: %d, want 404", status)
	}
}

// TestDPoPProofExpires refuses a proof whose iat left the window, with the
// server's clock.
func TestDPoPProofExpires(t *testing.T) {
	e := dpopEnv(t, `{"dpop":true}`)
	key := newSigner(t)
	tok := e.boundToken(key.JKT(), "jti-late")
	p := e.proof(key, http.MethodPost, tok, "")
	e.clock.Advance(61 * time.Second)
	resp, body := e.post("DPoP "+tok, initializeBody, "DPoP", p)
	if err := checkRefused(resp, body, dpopRefusal("invalid_dpop_proof", "the proof's iat 2026-03-01T12:00:00Z is more than 1m0s from now (2026-03-01T12:01:01Z)")); err != nil {
		t.Error(err)
	}
}
