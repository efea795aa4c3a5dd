package config

import (
	"fmt"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/policy/expr"
)

// Policy decides who may use a route, and which tools, prompts, resources
// and methods of the remote server each user may use
// (docs/access-policy.md). A route without one is open to every user who
// can sign in at the identity provider.
type Policy struct {
	// Allow lists who may use the route: any entry that matches admits the
	// user. Not set: every signed-in user (unless deny matches).
	Allow []Subject `yaml:"allow"`

	// Deny lists who may not use the route; it wins over allow.
	Deny []Subject `yaml:"deny"`

	// Tools are rules over tools/call, by tool name; tools/list answers
	// leave out the tools a user may not call. The first rule whose names
	// match decides; a tool no rule names is allowed.
	Tools []NameRule `yaml:"tools"`

	// Prompts are rules over prompts/get (and prompt completions), by
	// prompt name; prompts/list answers are filtered likewise.
	Prompts []NameRule `yaml:"prompts"`

	// Resources are rules over resources/read, subscribe, unsubscribe
	// (and resource completions), by URI; resources/list and
	// resources/templates/list answers are filtered likewise.
	Resources []URIRule `yaml:"resources"`

	// Methods are rules over every JSON-RPC method a client sends,
	// checked before the rules above.
	Methods []NameRule `yaml:"methods"`
}

// Subject is one entry of an allow or deny list: it matches a user when
// every field it sets matches.
type Subject struct {
	// Users are subjects (the identity provider's sub).
	Users []string `yaml:"users"`

	// Emails are email addresses; they match only an email the identity
	// provider marks email_verified.
	Emails []string `yaml:"emails"`

	// EmailDomains are domains of verified email addresses (`example.com`
	// matches `alice@example.com`, not `alice@sub.example.com`).
	EmailDomains []string `yaml:"email_domains"`

	// Groups match when one of the user's groups is listed
	// (identity_provider.groups_claim).
	Groups []string `yaml:"groups"`

	// Claims map a claim's name to the values it may have; each claim
	// named must have one of its values (a claim that is a list: any of
	// its elements).
	Claims map[string][]string `yaml:"claims"`

	// CEL is an expression over user (sub, email, email_verified, name,
	// groups, claims) and, in rules, mcp (method, name, uri) that must be
	// true.
	CEL string `yaml:"cel"`

	// Program is CEL, compiled when the file loads.
	Program *expr.Program `yaml:"-"`
}

// NameRule decides who may use the tools, prompts or methods whose names
// match its patterns.
type NameRule struct {
	// Names are names or patterns, where * stands for any run of
	// characters; matching ignores case.
	Names []string `yaml:"names"`

	// Allow lists who may use them; allow: [] refuses everyone. Not set:
	// everyone not denied.
	Allow []Subject `yaml:"allow"`

	// Deny lists who may not use them; it wins over allow.
	Deny []Subject `yaml:"deny"`
}

// URIRule decides who may use the resources whose URIs match its
// patterns.
type URIRule struct {
	// URIs are URIs or patterns, where * stands for any run of
	// characters; matching ignores case.
	URIs []string `yaml:"uris"`

	// Allow lists who may use them; allow: [] refuses everyone. Not set:
	// everyone not denied.
	Allow []Subject `yaml:"allow"`

	// Deny lists who may not use them; it wins over allow.
	Deny []Subject `yaml:"deny"`
}

// HasItemRules reports whether the policy has rules over what MCP clients
// ask for (tools, prompts, resources, methods): the proxy then reads every
// request body before forwarding it.
func (p *Policy) HasItemRules() bool {
	return p != nil && len(p.Tools)+len(p.Prompts)+len(p.Resources)+len(p.Methods) > 0
}

func (p *Policy) validate(path string, d *decoder) {
	validateSubjects(p.Allow, path+".allow", d)
	validateSubjects(p.Deny, path+".deny", d)
	for i, r := range p.Tools {
		validateRule(r.Names, "names", r.Allow, r.Deny, fmt.Sprintf("%s.tools[%d]", path, i), d)
	}
	for i, r := range p.Prompts {
		validateRule(r.Names, "names", r.Allow, r.Deny, fmt.Sprintf("%s.prompts[%d]", path, i), d)
	}
	for i, r := range p.Resources {
		validateRule(r.URIs, "uris", r.Allow, r.Deny, fmt.Sprintf("%s.resources[%d]", path, i), d)
	}
	for i, r := range p.Methods {
		validateRule(r.Names, "names", r.Allow, r.Deny, fmt.Sprintf("%s.methods[%d]", path, i), d)
	}
}

func validateRule(patterns []string, field string, allow, deny []Subject, path string, d *decoder) {
	switch {
	case len(patterns) == 0 && !d.failed(path+"."+field):
		d.errorf(d.pos(path), path+"."+field, "missing; name what the rule is about (* matches anything)")
	case allow == nil && deny == nil:
		d.errorf(d.pos(path), path, "says nobody: set allow (allow: [] refuses everyone) or deny")
	}
	for i, p := range patterns {
		if strings.TrimSpace(p) == "" {
			fp := fmt.Sprintf("%s.%s[%d]", path, field, i)
			d.errorf(d.pos(fp), fp, "is empty; write a name, a URI or a pattern with *")
		}
	}
	validateSubjects(allow, path+".allow", d)
	validateSubjects(deny, path+".deny", d)
}

func validateSubjects(list []Subject, path string, d *decoder) {
	for i := range list {
		s := &list[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		if len(s.Users)+len(s.Emails)+len(s.EmailDomains)+len(s.Groups)+len(s.Claims) == 0 && s.CEL == "" {
			d.errorf(d.pos(p), p, "matches everyone; name users, emails, email_domains, groups, claims or cel")
		}
		for j, dom := range s.EmailDomains {
			if msg := checkEmailDomain(dom); msg != "" {
				fp := fmt.Sprintf("%s.email_domains[%d]", p, j)
				d.errorf(d.pos(fp), fp, "%s", msg)
			}
		}
		for j, e := range s.Emails {
			if local, dom, ok := strings.Cut(e, "@"); !ok || local == "" || checkEmailDomain(dom) != "" {
				fp := fmt.Sprintf("%s.emails[%d]", p, j)
				d.errorf(d.pos(fp), fp, "%q is not an email address", e)
			}
		}
		if s.CEL != "" {
			prg, err := expr.Compile(s.CEL)
			if err != nil {
				d.errorf(d.pos(p+".cel"), p+".cel", "%v", err)
				continue
			}
			s.Program = prg
		}
	}
}

func checkEmailDomain(dom string) string {
	if dom == "" || strings.ContainsAny(dom, "@*/: ") || strings.HasPrefix(dom, ".") || strings.HasSuffix(dom, ".") {
		return fmt.Sprintf("%q is not a domain, such as example.com", dom)
	}
	return ""
}
