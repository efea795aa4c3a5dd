package policy

import (
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"echo", "echo", true}, {"echo", "echo2", false}, {"*", "", true}, {"*", "anything", true},
		{"delete_*", "delete_repo", true}, {"delete_*", "undelete_repo", false}, {"*_admin", "repo_admin", true},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"file:///secret/*", "file:///secret/a/b", true},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	} {
		if got := match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

// TestSubjects: each field of an entry, and CEL over the user and the
// request.
func TestSubjects(t *testing.T) {
	cfg := configtest.Load(t, configtest.Head+`routes:
  - from: https://mcp.example.com
    to: https://remote.example.com
    mcp: {server: {}}
    policy:
      allow:
        - claims: {department: [eng], level: ["3"]}
        - cel: '"ops" in user.groups && user.claims.region == "eu"'
      deny:
        - emails: [mallory@example.com]
      tools:
        - names: ["*"]
          allow:
            - cel: 'mcp.name != "echo" || user.sub == "alice"'
`)
	rc := &cfg.Routes[0]
	now := time.Now()
	p := New(rc, "src", time.Hour, func() time.Time { return now })
	user := func(sub string, claims map[string]any, groups ...string) request.Identity {
		return request.Identity{Subject: sub, Email: sub + "@example.com", EmailVerified: true, Groups: groups, Claims: claims, SignedIn: now, Source: "src"}
	}
	for _, tc := range []struct {
		id   request.Identity
		want bool
		rule string
	}{
		{user("a", map[string]any{"department": "eng", "level": 3.0}), true, "allow[0] matched"},
		{user("b", map[string]any{"department": []any{"sales", "eng"}, "level": "3"}), true, "allow[0] matched"},
		{user("c", map[string]any{"department": "eng"}), false, "allow: no entry matched"},
		{user("d", map[string]any{"region": "eu"}, "ops"), true, "allow[1] matched"},
		{user("e", map[string]any{"region": "us"}, "ops"), false, "allow: no entry matched"},
		{user("f", nil, "ops"), false, "allow: no entry matched"}, // the expression fails: no match
		{user("mallory", map[string]any{"department": "eng", "level": 3.0}), false, "deny[0] matched"},
	} {
		if d := p.Route(tc.id); d.Allowed != tc.want || d.Why != tc.rule {
			t.Errorf("%s: %+v, want %v by %s", tc.id.Subject, d, tc.want, tc.rule)
		}
	}
	m := &jsonrpc.Message{Method: "tools/call", Params: jsonrpc.Params{Name: "echo"}}
	if d := p.Message(user("alice", nil), m); !d.Allowed {
		t.Errorf("alice's echo: %+v", d)
	}
	if d := p.Message(user("bob", nil), m); d.Allowed || d.Rule != "policy.tools[0]" {
		t.Errorf("bob's echo: %+v", d)
	}
	if !p.Fresh(user("a", nil)) {
		t.Error("claims of now are not fresh")
	}
	old := user("a", nil)
	old.SignedIn = now.Add(-time.Hour)
	if p.Fresh(old) {
		t.Error("claims of claims_max_age ago are fresh")
	}
}

// TestKeepFollowsTheRules: list items are kept by the rules of their kind.
func TestKeepFollowsTheRules(t *testing.T) {
	cfg := configtest.Load(t, configtest.Head+`routes:
  - from: https://mcp.example.com
    to: https://remote.example.com
    mcp: {server: {}}
    policy:
      tools: [{names: [echo], allow: []}]
      prompts: [{names: [p], allow: []}]
      resources: [{uris: ["file:///secret/*"], allow: []}]
`)
	p := New(&cfg.Routes[0], "", time.Hour, time.Now)
	keep := p.Keep(request.Identity{Subject: "bob"})
	for _, tc := range []struct {
		list jsonrpc.List
		name string
		want bool
	}{
		{jsonrpc.Lists[0], "echo", false}, {jsonrpc.Lists[0], "whoami", true}, {jsonrpc.Lists[0], "p", true},
		{jsonrpc.Lists[1], "p", false}, {jsonrpc.Lists[1], "echo", true},
		{jsonrpc.Lists[2], "file:///secret/a", false}, {jsonrpc.Lists[2], "file:///public/a", true},
		{jsonrpc.Lists[3], "file:///secret/{path}", false},
	} {
		if got := keep(tc.list, tc.name); got != tc.want {
			t.Errorf("%s %s: keep = %v", tc.list.Items, tc.name, got)
		}
	}
}
