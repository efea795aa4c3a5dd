package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// mcpUpstream stands in for the remote MCP server: it records the
// messages that reached it and answers list requests with three tools,
// as JSON or as an event stream.
type mcpUpstream struct {
	mu       sync.Mutex
	received []string // method and name of every POST that arrived
	sse      bool
}

const threeTools = `{"tools":[{"name":"echo"},{"name":"whoami"},{"name":"delete_repo"}],"nextCursor":"page2","cacheScope":"public"}`

func (u *mcpUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	if r.Method == http.MethodGet { // a resumed stream replays a list answer
		h.Set("Content-Type", "text/event-stream")
		body := "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":" + threeTools + "}\n\n"
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	b, _ := io.ReadAll(r.Body)
	var m struct {
		ID     json.RawMessage
		Method string
		Params struct{ Name string }
	}
	_ = json.Unmarshal(b, &m)
	u.mu.Lock()
	u.received = append(u.received, strings.TrimSpace(m.Method+" "+m.Params.Name))
	sse := u.sse
	u.mu.Unlock()
	result := `{}`
	if m.Method == "tools/list" {
		result = threeTools
	}
	answer := `{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + result + `}`
	if sse {
		h.Set("Content-Type", "text/event-stream")
		answer = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\nevent: message\ndata: " + answer + "\n\n"
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
}

func (u *mcpUpstream) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.received...)
}

// policyProxy runs a proxy whose route mcp.test has the policy block
// policy (YAML at route level), in front of a recording remote server.
type policyProxy struct {
	p   *Proxy
	up  *mcpUpstream
	now *time.Time
}

func newPolicyProxy(t *testing.T, policy string) *policyProxy {
	t.Helper()
	up := &mcpUpstream{}
	p, now := newTestProxySource(t, testConfig("", policy, ""), up, nil)
	pp := &policyProxy{p: p, up: up, now: now}
	pp.putUpstreamTokens(t)
	return pp
}

// putUpstreamTokens gives each test user a remote token.
func (pp *policyProxy) putUpstreamTokens(t testing.TB) {
	t.Helper()
	rt := pp.p.current().routes["mcp.test"]
	for _, user := range []string{"alice", "bob", "carol"} {
		key := rt.bindingKey(user, "", "https://upstream.test/mcp")
		if err := rt.tokens.Put(context.Background(), &upstream.Token{Key: key, AccessToken: "up-" + user,
			Grant: upstream.Grant{Resource: "https://upstream.test/mcp"}, Subject: user, Expiry: pp.now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
}

// users of the tests: alice of platform, bob of no group, carol with an
// email the provider has not verified.
func (pp *policyProxy) identity(user string) *request.Identity {
	src := ""
	if pol := pp.p.current().routes["mcp.test"].policy; pol != nil {
		src = pol.Source()
	}
	id := &request.Identity{Subject: user, Email: user + "@example.com", EmailVerified: true,
		SignedIn: *pp.now, Source: src}
	switch user {
	case "alice":
		id.Groups = []string{"platform"}
	case "carol":
		id.EmailVerified = false
	}
	return id
}

// token issues user a downstream access token carrying id.
func (pp *policyProxy) token(t testing.TB, id *request.Identity) string {
	t.Helper()
	rt := pp.p.current().routes["mcp.test"]
	key := rt.bindingKey(id.Subject, "", "https://upstream.test/mcp")
	tok := "down-" + id.Subject + fmt.Sprint(time.Now().UnixNano())
	g := &request.Grant{ID: tok, Route: "mcp.test", Subject: id.Subject, Identity: id, BindingKey: key, Upstream: "https://upstream.test/mcp"}
	if err := pp.p.putAccessToken(tok, &bearer.AccessToken{Grant: g, Expires: pp.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// post sends body as user's MCP client, with extra headers.
func (pp *policyProxy) post(t *testing.T, user, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+pp.token(t, pp.identity(user)))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return do(pp.p, r)
}

func call(name string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
}

const toolPolicy = `    policy:
      tools:
        - names: [echo, "delete_*"]
          allow:
            - groups: [platform]
      prompts:
        - names: [secret]
          allow: []
      methods:
        - names: ["notifications/roots/*"]
          allow: []`

// refused checks rec is the JSON-RPC refusal of request id 7.
func refused(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var a struct {
		ID    int
		Error struct {
			Code    int
			Message string
			Data    map[string]string
		}
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &a) != nil || a.ID != 7 || a.Error.Code != -32602 ||
		a.Error.Data["error"] != "policy_denied" || a.Error.Data["request_id"] != rec.Header().Get("X-Request-Id") ||
		!strings.Contains(a.Error.Message, "access denied") {
		t.Errorf("%s: want the JSON-RPC refusal, got %d %s", what, rec.Code, rec.Body)
	}
}

// TestToolPolicyWaysAround: every way around a tool rule that
// implementations have had to close, each refused without reaching the
// remote server; the same requests of a user the rule admits pass.
func TestToolPolicyWaysAround(t *testing.T) {
	pp := newPolicyProxy(t, toolPolicy)
	refused(t, "bob calls echo", pp.post(t, "bob", call("echo")))
	refused(t, "another case", pp.post(t, "bob", call("ECHO")))
	refused(t, "an escaped name", pp.post(t, "bob", call(`ech\u006f`)))
	refused(t, "a wildcard", pp.post(t, "bob", call("delete_repo")))
	refused(t, "method in another case", pp.post(t, "bob", `{"jsonrpc":"2.0","id":7,"Method":"tools/call","params":{"name":"echo"}}`))
	refused(t, "name in another case", pp.post(t, "bob", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"Name":"echo"}}`))
	refused(t, "a prompt's completions", pp.post(t, "bob", `{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret"},"argument":{"name":"a","value":""}}}`))
	for name, tc := range map[string]struct {
		body   string
		status int
		code   string
		hdr    []string
	}{
		"a batch":                      {`[` + call("whoami") + `,` + call("echo") + `]`, 400, "request_not_inspectable", nil},
		"a name twice":                 {`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","name":"echo"}}`, 400, "request_not_inspectable", nil},
		"a method in two cases":        {`{"jsonrpc":"2.0","id":7,"method":"tools/list","METHOD":"tools/call","params":{"name":"echo"}}`, 400, "request_not_inspectable", nil},
		"the header lies":              {call("whoami"), 400, "mcp_header_mismatch", []string{"Mcp-Method", "tools/list"}},
		"the name header lies":         {call("whoami"), 400, "mcp_header_mismatch", []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}},
		"a compressed body":            {call("echo"), 415, "request_not_inspectable", []string{"Content-Encoding", "gzip"}},
		"a body too large to read":     {`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","pad":"` + strings.Repeat("x", 1<<20) + `"}}`, 413, "request_not_inspectable", nil},
		"a notification refused":       {`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, 403, "policy_denied", nil},
		"a notification's header lies": {`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 400, "mcp_header_mismatch", []string{"Mcp-Method", "notifications/cancelled"}},
		"the task header lies":         {`{"jsonrpc":"2.0","id":7,"method":"tasks/get","params":{"taskId":"t-1"}}`, 400, "mcp_header_mismatch", []string{"Mcp-Method", "tasks/get", "Mcp-Name", "t-2"}},
	} {
		rec := pp.post(t, "alice", tc.body, tc.hdr...)
		code, rid := refusal(rec.Body.Bytes())
		if rec.Code != tc.status || code != tc.code || rid == "" {
			t.Errorf("%s: got %d %s, want %d %s", name, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
	if got := pp.up.got(); len(got) != 0 {
		t.Fatalf("the remote server received %q; every request above was to be refused", got)
	}
	for _, body := range []string{call("echo"), call("ECHO"), call("whoami")} {
		if rec := pp.post(t, "alice", body, "Mcp-Method", "tools/call"); rec.Code != 200 || strings.Contains(rec.Body.String(), "error") {
			t.Errorf("alice %s: %d %s", body, rec.Code, rec.Body)
		}
	}
	if rec := pp.post(t, "bob", call("whoami")); rec.Code != 200 || strings.Contains(rec.Body.String(), "error") {
		t.Errorf("bob calls whoami, which no rule names: %d %s", rec.Code, rec.Body)
	}
	if got := pp.up.got(); strings.Join(got, ",") != "tools/call echo,tools/call ECHO,tools/call whoami,tools/call whoami" {
		t.Errorf("the remote server received %q", got)
	}
}

// TestListsAreFiltered: tools/list answers lose what the user may not
// call, as JSON, as an event stream, and when a stream is resumed with GET.
func TestListsAreFiltered(t *testing.T) {
	pp := newPolicyProxy(t, toolPolicy)
	list := `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`
	for _, sse := range []bool{false, true} {
		pp.up.sse = sse
		for user, want := range map[string]string{"alice": "echo whoami delete_repo", "bob": "whoami"} {
			rec := pp.post(t, user, list)
			if got := toolNames(t, rec.Body.Bytes(), sse); got != want {
				t.Errorf("sse=%v: %s sees %q, want %q", sse, user, got, want)
			}
			if user == "bob" && !strings.Contains(rec.Body.String(), `"cacheScope":"private"`) {
				t.Errorf("sse=%v: bob's filtered list still says public: %s", sse, rec.Body)
			}
			if sse && !strings.Contains(rec.Body.String(), "notifications/tools/list_changed") {
				t.Errorf("the notification in the stream did not pass: %s", rec.Body)
			}
		}
	}
	r := httptest.NewRequest(http.MethodGet, "https://mcp.test/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+pp.token(t, pp.identity("bob")))
	r.Header.Set("Last-Event-ID", "0")
	if got := toolNames(t, do(pp.p, r).Body.Bytes(), true); got != "whoami" {
		t.Errorf("a resumed stream replays the list unfiltered: bob sees %q", got)
	}
}

func toolNames(t *testing.T, body []byte, sse bool) string {
	t.Helper()
	for _, part := range bytes.Split(body, []byte("\n")) {
		part = bytes.TrimPrefix(part, []byte("data: "))
		var a struct {
			Result struct{ Tools []struct{ Name string } }
		}
		if json.Unmarshal(part, &a) == nil && a.Result.Tools != nil {
			var names []string
			for _, tool := range a.Result.Tools {
				names = append(names, tool.Name)
			}
			return strings.Join(names, " ")
		}
	}
	t.Errorf("no tools/list answer in %s", body)
	return ""
}

// TestRoutePolicyOnEveryRequest: the route's policy refuses on every
// request, from the claims the grant carries; an unverified email never
// matches a domain rule, and claims too old or from other sign-in
// settings send the client to authorize again.
func TestRoutePolicyOnEveryRequest(t *testing.T) {
	pp := newPolicyProxy(t, `    policy:
      allow:
        - email_domains: [example.com]
          groups: [platform]
        - users: [bob]`)
	list := `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`
	for user, want := range map[string]int{"alice": 200, "bob": 200, "carol": 403} {
		if rec := pp.post(t, user, list); rec.Code != want {
			t.Errorf("%s: %d %s, want %d", user, rec.Code, rec.Body, want)
		}
	}
	carol := pp.identity("carol")
	carol.Groups, carol.EmailVerified = []string{"platform"}, false
	r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(list))
	r.Header.Set("Authorization", "Bearer "+pp.token(t, carol))
	if rec := do(pp.p, r); rec.Code != 403 || !strings.Contains(rec.Body.String(), "You are signed in as carol@example.com (carol)") {
		t.Errorf("carol of platform with an unverified email: %d %s", rec.Code, rec.Body)
	}
	for name, change := range map[string]func(*request.Identity){
		"claims too old":       func(id *request.Identity) { id.SignedIn = id.SignedIn.Add(-9 * time.Hour) },
		"other settings":       func(id *request.Identity) { id.Source = "before-the-groups-scope" },
		"a grant of no claims": func(id *request.Identity) { *id = request.Identity{} },
	} {
		id := pp.identity("alice")
		change(id)
		id.Subject = "alice"
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(list))
		r.Header.Set("Authorization", "Bearer "+pp.token(t, id))
		if rec := do(pp.p, r); rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
}

// TestServiceAccountPolicyIsTheCallers: on a service_account route every
// user's requests carry the one shared token, but the policy decides on
// the signed-in caller: bob is refused although the token works for alice.
func TestServiceAccountPolicyIsTheCallers(t *testing.T) {
	up := &mcpUpstream{}
	src := testConfig("audit: {file: audit.log}", `    policy:
      allow:
        - users: [alice]`, "upstream_token_binding: service_account, service_account: {admin: alice}")
	p, now := newTestProxySource(t, src, up, nil)
	pp := &policyProxy{p: p, up: up, now: now}
	rt := p.current().routes["mcp.test"]
	key := rt.bindingKey("", "", "https://upstream.test/mcp")
	if err := rt.tokens.Put(context.Background(), &upstream.Token{Key: key, AccessToken: "shared", Subject: "alice",
		Grant: upstream.Grant{Resource: "https://upstream.test/mcp"}, Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]int{"alice": 200, "bob": 403} {
		id := pp.identity(user)
		tok := "down-" + user
		g := &request.Grant{ID: tok, Route: "mcp.test", Subject: user, Identity: id, BindingKey: key, Upstream: "https://upstream.test/mcp"}
		if err := p.putAccessToken(tok, &bearer.AccessToken{Grant: g, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/mcp", strings.NewReader(call("whoami")))
		r.Header.Set("Authorization", "Bearer "+tok)
		if rec := do(p, r); rec.Code != want {
			t.Errorf("%s on the shared token: %d %s, want %d", user, rec.Code, rec.Body, want)
		}
	}
	if got := up.got(); len(got) != 1 {
		t.Errorf("the remote server received %q; only alice's request was to reach it", got)
	}
	// The refusal is in the audit log, with the user who was refused.
	b, err := os.ReadFile(filepath.Join(filepath.Dir(p.current().cfg.Path("config.yaml")), "audit.log"))
	if err != nil || !strings.Contains(string(b), `"user":"bob"`) || !strings.Contains(string(b), `"action":"policy_denied","decision":"denied"`) {
		t.Errorf("the audit log lacks bob's refusal (%v):\n%s", err, b)
	}
}

// refusal reads the catalog code and the request id of a refusal: the
// proxy's JSON error, or a JSON-RPC error with them in data.
func refusal(body []byte) (code, requestID string) {
	var rpc struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Data struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &rpc) == nil && rpc.JSONRPC == "2.0" {
		return rpc.Error.Data.Error, rpc.Error.Data.RequestID
	}
	var plain struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &plain)
	return plain.Error, plain.RequestID
}
