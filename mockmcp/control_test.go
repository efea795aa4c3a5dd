package mockmcp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/faults"
)

// faultRequest is one request of a fault test and what it must get.
type faultRequest struct {
	method, path string
	status       int    // 0 = the connection is dropped
	body         string // a substring the response body must contain
}

// recorded is the part of an event a fault test checks.
type recorded struct {
	Kind   string
	Status int
	Fault  string
	Method string // the JSON-RPC method, for MCP POSTs
}

func TestInjectedFaults(t *testing.T) {
	const prm = "/.well-known/oauth-protected-resource/mcp"
	tests := []struct {
		name   string
		rule   string
		reqs   []faultRequest
		events []recorded
		rules  int // rules left active afterwards
	}{
		{
			name: "status for the next two MCP requests",
			rule: `{"path":"/mcp","count":2,"status":503}`,
			reqs: []faultRequest{
				{"POST", "/mcp", 503, `"error":"injected_fault"`},
				{"POST", "/mcp", 503, `"error":"injected_fault"`},
				{"POST", "/mcp", 200, `"serverInfo"`},
			},
			events: []recorded{
				{KindMCP, 503, FaultStatus, "initialize"},
				{KindMCP, 503, FaultStatus, "initialize"},
				{KindMCP, 200, "", "initialize"},
			},
		},
		{
			name: "dropped connection",
			rule: `{"path":"/mcp","count":1,"drop":true}`,
			reqs: []faultRequest{
				{"POST", "/mcp", 0, ""},
				{"POST", "/mcp", 200, `"serverInfo"`},
			},
			events: []recorded{
				{KindMCP, 0, FaultDropped, "initialize"},
				{KindMCP, 200, "", "initialize"},
			},
		},
		{
			name: "only the given method",
			rule: `{"path":"` + prm + `","method":"POST","status":500}`,
			reqs: []faultRequest{
				{"GET", prm, 200, `"resource"`},
				{"POST", prm, 500, `"error":"injected_fault"`},
			},
			events: []recorded{{KindPRM, 200, "", ""}, {KindPRM, 500, FaultStatus, ""}},
			rules:  1,
		},
		{
			name: "path prefix",
			rule: `{"path":"/.well-known/*","count":1,"status":502}`,
			reqs: []faultRequest{
				{"GET", prm, 502, `"error":"injected_fault"`},
				{"GET", prm, 200, `"resource"`},
			},
			events: []recorded{{KindPRM, 502, FaultStatus, ""}, {KindPRM, 200, "", ""}},
		},
		{
			name:   "delay, then handled",
			rule:   `{"path":"` + prm + `","count":1,"delay":"1ms"}`,
			reqs:   []faultRequest{{"GET", prm, 200, `"resource"`}},
			events: []recorded{{KindPRM, 200, "", ""}},
		},
		{
			name: "health check",
			rule: `{"path":"/healthz","count":1,"status":500}`,
			reqs: []faultRequest{
				{"GET", "/healthz", 500, `"error":"injected_fault"`},
				{"GET", "/healthz", 200, `"ok"`},
			},
		},
		{
			name:  "the control API is never faulted",
			rule:  `{"path":"/.test/*","status":500}`,
			reqs:  []faultRequest{{"GET", "/.test/counters", 200, `"mcp"`}},
			rules: 1,
		},
	}
	for _, proto := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		for _, tt := range tests {
			t.Run(proto.name+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t)
				e.serveProto(resourceHost, e.srv, proto.http2)
				tok := e.valid()
				if status, body := e.control(http.MethodPost, "/.test/faults", tt.rule); status != http.StatusCreated {
					t.Fatalf("POST /.test/faults: %d %s", status, body)
				}
				for i, fr := range tt.reqs {
					var rd *strings.Reader
					if fr.method == http.MethodPost {
						rd = strings.NewReader(initializeBody)
					} else {
						rd = strings.NewReader("")
					}
					req, _ := http.NewRequest(fr.method, "https://"+resourceHost+fr.path, rd)
					req.Header.Set("Authorization", "Bearer "+tok)
					if strings.HasPrefix(fr.path, "/.test/") {
						req.Header.Set("Authorization", "Bearer "+controlSecret)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					resp, err := e.client.Do(req)
					if fr.status == 0 {
						if err == nil {
							resp.Body.Close()
							t.Errorf("request %d: answered %d, want a dropped connection", i, resp.StatusCode)
						}
						continue
					}
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != fr.status || !strings.Contains(string(b), fr.body) {
						t.Errorf("request %d %s %s: %d %s, want %d with %s", i, fr.method, fr.path, resp.StatusCode, b, fr.status, fr.body)
					}
					if want := map[bool]int{false: 1, true: 2}[proto.http2]; resp.ProtoMajor != want {
						t.Errorf("request %d: served over %s, want HTTP/%d", i, resp.Proto, want)
					}
				}
				var got []recorded
				for _, ev := range e.srv.Recorder().Events() {
					got = append(got, recorded{ev.Kind, ev.Status, ev.Detail[DetailInjectedFault], ev.Detail[DetailMCPMethod]})
				}
				if diff := cmp.Diff(tt.events, got); diff != "" {
					t.Errorf("recorded events (-want +got):\n%s", diff)
				}
				var rules []faults.Rule
				if status, body := e.control(http.MethodGet, "/.test/faults", ""); status != http.StatusOK || json.Unmarshal(body, &rules) != nil {
					t.Fatalf("GET /.test/faults: %d %s", status, body)
				}
				if len(rules) != tt.rules {
					t.Errorf("%d rules left, want %d: %+v", len(rules), tt.rules, rules)
				}
				if status, _ := e.control(http.MethodDelete, "/.test/faults", ""); status != http.StatusNoContent {
					t.Errorf("DELETE /.test/faults: %d", status)
				}
			})
		}
	}
}

// TestFaultDelayAbandoned: a client that gives up during an injected delay
// is recorded without a status.
func TestFaultDelayAbandoned(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.Faults().Add(faults.Rule{Path: "/mcp", Delay: "1m"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, resourceURL, strings.NewReader(initializeBody))
	req.Header.Set("Authorization", "Bearer "+e.valid())
	done := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	eventually(t, "the delay rule fired", func() bool {
		r := e.srv.Faults().Rules()
		return len(r) == 1 && r[0].Fired == 1
	})
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the request was answered during a one-minute delay")
	}
	eventually(t, "the abandoned request was recorded", func() bool { return len(e.srv.Recorder().Events()) == 1 })
	ev := e.srv.Recorder().Events()[0]
	if ev.Status != 0 || ev.Detail[DetailInjectedFault] != FaultAbandoned || ev.Detail[DetailMCPMethod] != "initialize" {
		t.Errorf("event %+v: want no status, %s=%s and the MCP method", ev, DetailInjectedFault, FaultAbandoned)
	}
	e.srv.Faults().Clear()
}

func TestFaultRulesRefused(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"path":"/mcp","status":503,"typo":1}`,
		`{"path":"/mcp"}`,
		`{"path":"/mcp","status":503,"drop":true}`,
		`{"path":"mcp","status":503}`,
		`{"path":"/mcp","delay":"soon"}`,
	} {
		if status, b := e.control(http.MethodPost, "/.test/faults", body); status != http.StatusBadRequest || !strings.Contains(string(b), "invalid_request") {
			t.Errorf("POST /.test/faults %s: %d %s, want 400 invalid_request", body, status, b)
		}
	}
	if n := len(e.srv.Faults().Rules()); n != 0 {
		t.Errorf("%d rules active after refused ones", n)
	}
}

func TestCounters(t *testing.T) {
	e := newEnv(t)
	tok := e.valid()
	steps := []struct {
		name string
		do   func()
		want map[string]int
	}{
		{"at start", func() {}, map[string]int{"mcp": 0, "prm": 0, "other": 0}},
		{"MCP requests, accepted and refused", func() {
			e.post("Bearer "+tok, initializeBody)
			e.post("", initializeBody)
		}, map[string]int{"mcp": 2, "prm": 0, "other": 0}},
		{"metadata, found or not", func() {
			e.get(prmPathURL)
			e.get(prmRootURL)
		}, map[string]int{"mcp": 2, "prm": 2, "other": 0}},
		{"other paths", func() {
			e.get("https://" + resourceHost + "/.well-known/oauth-authorization-server")
			e.get("https://" + resourceHost + "/nothing")
		}, map[string]int{"mcp": 2, "prm": 2, "other": 2}},
		{"health checks and control requests are not counted", func() {
			e.get("https://" + resourceHost + "/healthz")
			e.control(http.MethodGet, "/.test/events", "")
			e.control(http.MethodGet, "/.test/settings", "")
			e.control(http.MethodGet, "/.test/tokens", "")
			e.control(http.MethodGet, "/.test/faults", "")
		}, map[string]int{"mcp": 2, "prm": 2, "other": 2}},
		{"resetting the events resets the counters", func() {
			e.control(http.MethodDelete, "/.test/events", "")
		}, map[string]int{"mcp": 0, "prm": 0, "other": 0}},
	}
	for _, st := range steps {
		st.do()
		status, body := e.control(http.MethodGet, "/.test/counters", "")
		var got map[string]int
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("%s: GET /.test/counters: %d %s", st.name, status, body)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: counters (-want +got):\n%s", st.name, diff)
		}
	}
	if status, _ := e.control(http.MethodPost, "/.test/counters", "{}"); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /.test/counters: %d, want 405", status)
	}
}

func TestControlEndpointsGuarded(t *testing.T) {
	e := newEnv(t)
	off := newEnv(t, func(c *Config, _ *testAS) { c.ControlSecret = "" })
	for _, path := range []string{"/.test/events", "/.test/counters", "/.test/faults", "/.test/settings", "/.test/tokens"} {
		t.Run(path, func(t *testing.T) {
			u := "https://" + resourceHost + path
			for _, tc := range []struct {
				env    *env
				authz  string
				status int
			}{
				{e, "", http.StatusUnauthorized},
				{e, "Bearer wrong", http.StatusUnauthorized},
				{e, "Bearer " + controlSecret, http.StatusOK},
				{off, "Bearer " + controlSecret, http.StatusNotFound},
			} {
				var hdr []string
				if tc.authz != "" {
					hdr = []string{"Authorization", tc.authz}
				}
				if resp, body := tc.env.get(u, hdr...); resp.StatusCode != tc.status {
					t.Errorf("GET %s with %q: %d %s, want %d", path, tc.authz, resp.StatusCode, body, tc.status)
				}
			}
		})
	}
	if n := len(e.srv.Recorder().Events()) + len(off.srv.Recorder().Events()); n != 0 {
		t.Errorf("control requests were recorded: %d events", n)
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	tokens := map[string]string{}
	for _, jti := range []string{"jti-1", "jti-2", "jti-3"} {
		c := e.claims()
		c["jti"] = jti
		tokens[jti] = mint(t, e.key, c)
	}
	steps := []struct {
		name        string
		method      string
		body        string
		status      int
		revoked     []string
		accepted    []string // token ids that must then be accepted
		refused     []string // and refused
		seenAtLeast []string
	}{
		{name: "nothing revoked", method: "GET", status: 200, revoked: []string{}, accepted: []string{"jti-1"}},
		{name: "revoke what was seen", method: "POST", body: `{"revoke_seen":true}`, status: 200,
			revoked: []string{"jti-1"}, refused: []string{"jti-1"}, accepted: []string{"jti-2"}},
		{name: "revoke by id, added", method: "POST", body: `{"revoked_token_ids":["jti-2"]}`, status: 200,
			revoked: []string{"jti-1", "jti-2"}, refused: []string{"jti-1", "jti-2"}, accepted: []string{"jti-3"}},
		{name: "PUT replaces", method: "PUT", body: `{"revoked_token_ids":["jti-3"]}`, status: 200,
			revoked: []string{"jti-3"}, refused: []string{"jti-3"}, accepted: []string{"jti-1", "jti-2"}},
		{name: "misspelt field", method: "POST", body: `{"revoke_sen":true}`, status: 400},
		{name: "DELETE clears", method: "DELETE", status: 204, accepted: []string{"jti-3"}},
		{name: "cleared", method: "GET", status: 200, revoked: []string{}, seenAtLeast: []string{"jti-1", "jti-2", "jti-3"}},
	}
	for _, st := range steps {
		status, body := e.control(st.method, "/.test/tokens", st.body)
		if status != st.status {
			t.Fatalf("%s: %s /.test/tokens: %d %s, want %d", st.name, st.method, status, body, st.status)
		}
		if st.revoked != nil {
			var got TokenIDs
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %v: %s", st.name, err, body)
			}
			if diff := cmp.Diff(st.revoked, got.Revoked); diff != "" {
				t.Errorf("%s: revoked_token_ids (-want +got):\n%s", st.name, diff)
			}
			for _, jti := range st.seenAtLeast {
				if !contains(got.Seen, jti) {
					t.Errorf("%s: seen_token_ids %v lacks %s", st.name, got.Seen, jti)
				}
			}
		}
		for _, jti := range st.refused {
			resp, b := e.post("Bearer "+tokens[jti], initializeBody)
			if err := checkRefused(resp, b, invalidToken("the token was revoked (test control API)")); err != nil {
				t.Errorf("%s: %s: %v", st.name, jti, err)
			}
		}
		for _, jti := range st.accepted {
			if resp, b := e.post("Bearer "+tokens[jti], initializeBody); resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %s: %d %s, want 200", st.name, jti, resp.StatusCode, b)
			}
		}
	}
}

// rawSession initializes an MCP session with raw requests and returns its
// id.
func (e *env) rawSession(authz string) string {
	e.t.Helper()
	resp, b := e.post(authz, initializeBody)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		e.t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, sid, b)
	}
	resp, b = e.post(authz, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id", sid, "MCP-Protocol-Version", "2025-11-25")
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("initialized: %d %s", resp.StatusCode, b)
	}
	return sid
}

// callEcho calls the echo tool on a new session and returns the response.
func (e *env) callEcho(authz string) (*http.Response, []byte) {
	e.t.Helper()
	sid := e.rawSession(authz)
	return e.post(authz, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`,
		"Mcp-Session-Id", sid, "MCP-Protocol-Version", "2025-11-25")
}

func TestSettings(t *testing.T) {
	startup := Settings{PRM: PRMPathSuffixed, ChallengeScopes: []string{"mcp:read", "mcp:write"}, ToolScopes: map[string][]string{}}
	with := func(f func(*Settings)) Settings {
		st := startup.clone()
		f(&st)
		return st
	}
	tests := []settingsCase{
		{
			name: "metadata at the root", patch: `{"prm":"root"}`, status: 200,
			want:      with(func(s *Settings) { s.PRM = PRMRoot }),
			prm:       map[string]int{prmPathURL: 404, prmRootURL: 200},
			challenge: `Bearer resource_metadata="` + prmRootURL + `", ` + scopeParam,
			audiences: map[string]int{origin: 200, resourceURL: 200},
			check:     checkRootMetadata,
		},
		{
			name: "no metadata", patch: `{"prm":"absent"}`, status: 200,
			want:      with(func(s *Settings) { s.PRM = PRMAbsent }),
			prm:       map[string]int{prmPathURL: 404, prmRootURL: 404},
			challenge: `Bearer ` + scopeParam,
			audiences: map[string]int{origin: 401, resourceURL: 200},
		},
		{
			name: "back to path-suffixed", config: func(c *Config) { c.PRM = PRMRoot }, patch: `{"prm":"path"}`, status: 200,
			want:      startup,
			prm:       map[string]int{prmPathURL: 200, prmRootURL: 404},
			challenge: missingHdr,
			audiences: map[string]int{origin: 401, resourceURL: 200},
		},
		{
			name: "challenge scopes", patch: `{"challenge_scopes":["files:read"]}`, status: 200,
			want:      with(func(s *Settings) { s.ChallengeScopes = []string{"files:read"} }),
			prm:       map[string]int{prmPathURL: 200},
			challenge: `Bearer resource_metadata="` + prmPathURL + `", scope="files:read"`,
		},
		{
			name: "no challenge scopes", patch: `{"challenge_scopes":[]}`, status: 200,
			want:      with(func(s *Settings) { s.ChallengeScopes = []string{} }),
			challenge: `Bearer resource_metadata="` + prmPathURL + `"`,
		},
		{
			name: "a tool needs more scope", patch: `{"tool_scopes":{"echo":["mcp:admin"]}}`, status: 200,
			want:  with(func(s *Settings) { s.ToolScopes = map[string][]string{"echo": {"mcp:admin"}} }),
			echo:  403,
			check: checkEchoNeedsAdmin,
		},
		{
			name: "tool scopes removed", config: func(c *Config) { c.ToolScopes = map[string][]string{"echo": {"mcp:admin"}} },
			patch: `{"tool_scopes":{}}`, status: 200,
			want: startup, echo: 200,
		},
		{
			name: "no auth", patch: `{"no_auth":true}`, status: 200,
			want:  with(func(s *Settings) { s.NoAuth = true }),
			prm:   map[string]int{prmPathURL: 404, prmRootURL: 404},
			echo:  200,
			check: checkNoAuthWhoami,
		},
		{
			name: "auth again", config: func(c *Config) { c.NoAuth = true }, patch: `{"no_auth":false}`, status: 200,
			want:      startup,
			prm:       map[string]int{prmPathURL: 200},
			challenge: missingHdr,
			echo:      200,
		},
		{
			name:   "auth needs an authorization server",
			config: func(c *Config) { c.NoAuth = true; c.AuthorizationServers = nil },
			patch:  `{"no_auth":false}`, status: 400,
			want: with(func(s *Settings) { s.NoAuth = true }),
		},
		{
			name: "unknown field", patch: `{"prm":"root","no_ath":true}`, status: 400,
			want: startup, prm: map[string]int{prmPathURL: 200, prmRootURL: 404}, challenge: missingHdr,
		},
		{
			name: "DPoP", patch: `{"dpop":true}`, status: 200,
			want:      with(func(s *Settings) { s.DPoP = true }),
			challenge: `DPoP algs="ES256", resource_metadata="` + prmPathURL + `", ` + scopeParam,
			audiences: map[string]int{resourceURL: 401},
		},
		{name: "DPoP nonce without DPoP", patch: `{"dpop_nonce":true}`, status: 400, want: startup},
		{name: "unknown location", patch: `{"prm":"sideways"}`, status: 400, want: startup},
		{name: "bad scope", patch: `{"challenge_scopes":["a\"b"]}`, status: 400, want: startup},
		{name: "tool without scopes", patch: `{"tool_scopes":{"echo":[]}}`, status: 400, want: startup},
		{name: "null keeps the value", patch: `{"prm":null}`, status: 200, want: startup},
		{name: "not JSON", patch: `prm=root`, status: 400, want: startup},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// origin is the resource's origin, which the root metadata names.
const origin = "https://remote-mcp.provider.com"

// settingsCase is one PATCH of /.test/settings on a server started with
// config, and what it must change.
type settingsCase struct {
	name      string
	config    func(*Config)
	patch     string
	status    int
	want      Settings
	prm       map[string]int // metadata URL → status
	challenge string         // WWW-Authenticate of an initialize without a token; "" = answered 200
	audiences map[string]int // aud → status of an initialize
	echo      int            // status of a tools/call echo with a valid token; 0 = not checked
	check     func(t *testing.T, e *env)
}

func (tt settingsCase) run(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *testAS) {
		if tt.config != nil {
			tt.config(c)
		}
	})
	tt.patchAndRead(t, e)
	tt.checkMetadata(t, e)
	tt.checkRequests(t, e)
	if tt.check != nil {
		tt.check(t, e)
	}
}

// patchAndRead sends the PATCH and checks its answer and the settings the
// server then reports.
func (tt settingsCase) patchAndRead(t *testing.T, e *env) {
	t.Helper()
	status, body := e.control(http.MethodPatch, "/.test/settings", tt.patch)
	if status != tt.status {
		t.Fatalf("PATCH %s: %d %s, want %d", tt.patch, status, body, tt.status)
	}
	if status == http.StatusBadRequest && !strings.Contains(string(body), "nothing was changed") {
		t.Errorf("PATCH %s: refusal %s does not say that nothing was changed", tt.patch, body)
	}
	status, body = e.control(http.MethodGet, "/.test/settings", "")
	var got Settings
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("GET /.test/settings: %d %s %v", status, body, err)
	}
	if diff := cmp.Diff(tt.want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

// checkMetadata checks where the metadata is served and the URL the
// server says it is at.
func (tt settingsCase) checkMetadata(t *testing.T, e *env) {
	t.Helper()
	for u, want := range tt.prm {
		if resp, b := e.get(u); resp.StatusCode != want {
			t.Errorf("GET %s: %d %s, want %d", u, resp.StatusCode, b, want)
		}
	}
	wantPRM := ""
	if !tt.want.NoAuth {
		wantPRM = map[PRMLocation]string{PRMPathSuffixed: prmPathURL, PRMRoot: prmRootURL}[tt.want.PRM]
	}
	if got := e.srv.ResourceMetadataURL(); got != wantPRM {
		t.Errorf("ResourceMetadataURL() = %q, want %q", got, wantPRM)
	}
}

// checkRequests checks how the server answers an initialize without a
// token, one for each audience, and an echo call.
func (tt settingsCase) checkRequests(t *testing.T, e *env) {
	t.Helper()
	resp, b := e.post("", initializeBody)
	switch {
	case tt.want.NoAuth && resp.StatusCode != http.StatusOK:
		t.Errorf("initialize without a token in no-auth mode: %d %s", resp.StatusCode, b)
	case !tt.want.NoAuth && tt.challenge != "" && resp.Header.Get("WWW-Authenticate") != tt.challenge:
		t.Errorf("challenge\n got: %s\nwant: %s", resp.Header.Get("WWW-Authenticate"), tt.challenge)
	}
	for aud, want := range tt.audiences {
		c := e.claims()
		c["aud"] = aud
		if resp, b := e.post("Bearer "+mint(t, e.key, c), initializeBody); resp.StatusCode != want {
			t.Errorf("aud %s: %d %s, want %d", aud, resp.StatusCode, b, want)
		}
	}
	if tt.echo != 0 {
		if resp, b := e.callEcho("Bearer " + e.valid()); resp.StatusCode != tt.echo {
			t.Errorf("tools/call echo: %d %s, want %d", resp.StatusCode, b, tt.echo)
		}
	}
}

// checkRootMetadata checks that the metadata at the root names the origin
// as the resource.
func checkRootMetadata(t *testing.T, e *env) {
	_, body := e.get(prmRootURL)
	var md struct{ Resource string }
	if err := json.Unmarshal(body, &md); err != nil || md.Resource != origin {
		t.Errorf("root metadata resource %q, want %q", md.Resource, origin)
	}
}

// checkEchoNeedsAdmin checks the challenge of an echo call whose token
// lacks the scope the tool needs.
func checkEchoNeedsAdmin(t *testing.T, e *env) {
	resp, b := e.callEcho("Bearer " + e.valid())
	want := wantChallenge{status: 403, error: "insufficient_scope",
		header: `Bearer error="insufficient_scope", error_description="tool echo needs scope mcp:admin; the token has scope [mcp:read mcp:write]", resource_metadata="` + prmPathURL + `", scope="mcp:read mcp:write mcp:admin"`}
	if err := checkRefused(resp, b, want); err != nil {
		t.Error(err)
	}
}

// checkNoAuthWhoami checks that whoami in no-auth mode says no token was
// required and names nobody, whatever token came.
func checkNoAuthWhoami(t *testing.T, e *env) {
	cs := connect(t, e, "leaked-token")
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	var got WhoAmI
	if err := json.Unmarshal([]byte(mustJSON(t, res.StructuredContent)), &got); err != nil {
		t.Fatal(err)
	}
	if got.TokenRequired || got.Subject != "" {
		t.Errorf("whoami in no-auth mode: %+v", got)
	}
}

func TestSettingsReset(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *testAS) { c.ChallengeScopes = []string{"mcp:read"} })
	before := e.srv.Settings()
	if status, b := e.control(http.MethodPatch, "/.test/settings", `{"prm":"absent","no_auth":true,"challenge_scopes":[],"tool_scopes":{"echo":["x"]}}`); status != 200 {
		t.Fatalf("PATCH: %d %s", status, b)
	}
	if diff := cmp.Diff(before, e.srv.Settings()); diff == "" {
		t.Fatal("PATCH changed nothing")
	}
	status, body := e.control(http.MethodDelete, "/.test/settings", "")
	var got Settings
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("DELETE /.test/settings: %d %s", status, body)
	}
	want := Settings{PRM: PRMPathSuffixed, ChallengeScopes: []string{"mcp:read"}, ToolScopes: map[string][]string{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after DELETE (-want +got):\n%s", diff)
	}
	if status, _ := e.control(http.MethodPut, "/.test/settings", "{}"); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /.test/settings: %d, want 405", status)
	}
	if err := e.srv.SetSettings(Settings{PRM: 9}); err == nil || !strings.Contains(err.Error(), "prm: unknown location 9") {
		t.Errorf("SetSettings with a bad location: %v", err)
	}
}
