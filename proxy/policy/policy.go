// Package policy is the access policy of a route (docs/access-policy.md):
// who may use it, decided at the proxy's authorization and on every
// request, and which tools, prompts, resources and methods behind it each
// user may use, decided on the JSON-RPC message the remote server will act
// on. It is a step of the request path, after the binding and before the
// upstream token: a refused request never makes the proxy fetch or refresh
// a token.
package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// Policy is one route's compiled policy.
type Policy struct {
	route  string
	cfg    *config.Policy
	tools  []rule
	prompt []rule
	res    []rule
	method []rule
	// source and maxAge bound the claims a decision uses: those of the
	// current sign-in settings, at most maxAge old.
	source string
	maxAge time.Duration
	now    func() time.Time
}

// rule is a compiled tool, prompt, resource or method rule.
type rule struct {
	path     string // policy.tools[0]
	patterns []string
	allow    []config.Subject
	deny     []config.Subject
}

// Decision is the outcome of a decision and what made it.
type Decision struct {
	Allowed bool
	// Rule names the rule that decided, such as policy.allow or
	// policy.tools[0]; "" when none applied.
	Rule string
	// Why says how it decided, for the operator.
	Why string
}

// New compiles rc's policy; nil when the route has none. source is the
// identity provider's current sign-in settings (login.Provider.Source) and
// maxAge identity_provider.claims_max_age.
func New(rc *config.Route, source string, maxAge time.Duration, now func() time.Time) *Policy {
	pc := rc.Policy
	if pc == nil {
		return nil
	}
	p := &Policy{route: rc.Key(), cfg: pc, source: source, maxAge: maxAge, now: now}
	for i, r := range pc.Tools {
		p.tools = append(p.tools, compile(fmt.Sprintf("policy.tools[%d]", i), r.Names, r.Allow, r.Deny))
	}
	for i, r := range pc.Prompts {
		p.prompt = append(p.prompt, compile(fmt.Sprintf("policy.prompts[%d]", i), r.Names, r.Allow, r.Deny))
	}
	for i, r := range pc.Resources {
		p.res = append(p.res, compile(fmt.Sprintf("policy.resources[%d]", i), r.URIs, r.Allow, r.Deny))
	}
	for i, r := range pc.Methods {
		p.method = append(p.method, compile(fmt.Sprintf("policy.methods[%d]", i), r.Names, r.Allow, r.Deny))
	}
	return p
}

func compile(path string, patterns []string, allow, deny []config.Subject) rule {
	r := rule{path: path, allow: allow, deny: deny}
	for _, pat := range patterns {
		r.patterns = append(r.patterns, strings.ToLower(pat))
	}
	return r
}

// InspectsMessages reports whether the policy has rules over what MCP
// clients ask for, so that every request body must be read.
func (p *Policy) InspectsMessages() bool { return p != nil && p.cfg.HasItemRules() }

// Fresh reports whether id's claims may be decided on: obtained under the
// current sign-in settings, within claims_max_age.
func (p *Policy) Fresh(id request.Identity) bool {
	return id.Source == p.source && !id.SignedIn.IsZero() && p.now().Sub(id.SignedIn) < p.maxAge
}

// Route decides whether id may use the route.
func (p *Policy) Route(id request.Identity) Decision {
	return decide("policy", p.cfg.Allow, p.cfg.Deny, id, nil)
}

// Message decides whether id may send m: the methods rules first, then the
// rules over what m names (a tool, a prompt, a resource).
func (p *Policy) Message(id request.Identity, m *jsonrpc.Message) Decision {
	if m.Method == "" {
		return Decision{Allowed: true, Why: "a response, not a request"}
	}
	vars := &mcpVars{method: m.Method}
	if d, ok := first(p.method, m.Method, id, vars); ok && !d.Allowed {
		return d
	}
	rules, name := p.target(m)
	if rules == nil {
		return Decision{Allowed: true, Why: "no rule names it"}
	}
	vars.name, vars.uri = name, name
	if d, ok := first(rules, name, id, vars); ok {
		return d
	}
	return Decision{Allowed: true, Why: "no rule names it"}
}

// target returns the rules and the name of what m acts on; nil rules for a
// method that names nothing.
func (p *Policy) target(m *jsonrpc.Message) ([]rule, string) {
	switch m.Method {
	case "tools/call":
		return p.tools, m.Params.Name
	case "prompts/get":
		return p.prompt, m.Params.Name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return p.res, m.Params.URI
	case "completion/complete":
		if m.Params.Ref.Type == "ref/resource" {
			return p.res, m.Params.Ref.URI
		}
		return p.prompt, m.Params.Ref.Name
	}
	return nil, ""
}

// Keep returns what id may see of list answers.
func (p *Policy) Keep(id request.Identity) jsonrpc.Keep {
	return func(l jsonrpc.List, name string) bool {
		var rules []rule
		switch l.Items {
		case "tools":
			rules = p.tools
		case "prompts":
			rules = p.prompt
		case "resources", "resourceTemplates":
			rules = p.res
		}
		d, ok := first(rules, name, id, &mcpVars{method: l.Method, name: name, uri: name})
		return !ok || d.Allowed
	}
}

// first decides by the first rule whose patterns match name; false when
// none does.
func first(rules []rule, name string, id request.Identity, vars *mcpVars) (Decision, bool) {
	lower := strings.ToLower(name)
	for _, r := range rules {
		for _, pat := range r.patterns {
			if match(pat, lower) {
				return decide(r.path, r.allow, r.deny, id, vars), true
			}
		}
	}
	return Decision{}, false
}

// decide applies allow and deny: a deny entry that matches refuses; else
// allow not set admits, and allow set admits when an entry matches.
func decide(path string, allow, deny []config.Subject, id request.Identity, vars *mcpVars) Decision {
	u := &user{id: id}
	for i := range deny {
		if u.matches(&deny[i], vars) {
			return Decision{Rule: path, Why: fmt.Sprintf("deny[%d] matched", i)}
		}
	}
	if allow == nil {
		return Decision{Allowed: true, Rule: path, Why: "no allow list; deny did not match"}
	}
	for i := range allow {
		if u.matches(&allow[i], vars) {
			return Decision{Allowed: true, Rule: path, Why: fmt.Sprintf("allow[%d] matched", i)}
		}
	}
	return Decision{Rule: path, Why: "allow: no entry matched"}
}

// match reports whether name matches pattern, where * stands for any run
// of characters; both are lower case. It backtracks only to the last star,
// so a pattern of many stars costs at most len(pattern)·len(name) steps.
func match(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// mcpVars are the request a rule's CEL sees as mcp.
type mcpVars struct{ method, name, uri string }

// cel returns the variables of an expression.
func (v *mcpVars) cel() map[string]any {
	if v == nil {
		return map[string]any{"method": "", "name": "", "uri": ""}
	}
	return map[string]any{"method": v.method, "name": v.name, "uri": v.uri}
}

// Source is the sign-in settings whose claims the policy decides on.
func (p *Policy) Source() string { return p.source }
