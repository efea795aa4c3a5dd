package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/policy/expr"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// user is the identity a decision is about, with its CEL variables made
// once, on the first expression that needs them.
type user struct {
	id  request.Identity
	cel map[string]any
}

// matches reports whether the user matches every field s sets.
func (u *user) matches(s *config.Subject, vars *mcpVars) bool {
	id := &u.id
	switch {
	case len(s.Users) > 0 && !slices.Contains(s.Users, id.Subject):
		return false
	case len(s.Emails) > 0 && !(id.EmailVerified && slices.ContainsFunc(s.Emails, func(e string) bool { return strings.EqualFold(e, id.Email) })):
		return false
	case len(s.EmailDomains) > 0 && !(id.EmailVerified && slices.ContainsFunc(s.EmailDomains, func(d string) bool { return strings.EqualFold(d, domainOf(id.Email)) })):
		return false
	case len(s.Groups) > 0 && !slices.ContainsFunc(s.Groups, func(g string) bool { return slices.Contains(id.Groups, g) }):
		return false
	}
	for claim, values := range s.Claims {
		if !claimHas(id.Claims[claim], values) {
			return false
		}
	}
	if s.Program != nil {
		ok, _ := s.Program.Eval(expr.Vars{User: u.vars(), MCP: vars.cel()})
		return ok
	}
	return true
}

// vars are the user as an expression sees it.
func (u *user) vars() map[string]any {
	if u.cel == nil {
		claims := u.id.Claims
		if claims == nil {
			claims = map[string]any{}
		}
		groups := u.id.Groups
		if groups == nil {
			groups = []string{}
		}
		u.cel = map[string]any{"sub": u.id.Subject, "email": u.id.Email, "email_verified": u.id.EmailVerified,
			"name": u.id.Name, "groups": groups, "claims": claims}
	}
	return u.cel
}

// domainOf is the domain of an email address; "" when it has none.
func domainOf(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return email[i+1:]
}

// claimHas reports whether a claim's value is one of values: a string, a
// number or a bool as it is written, or a list any of whose elements is.
func claimHas(v any, values []string) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []any:
		return slices.ContainsFunc(v, func(x any) bool { return claimHas(x, values) })
	case map[string]any:
		return false
	case string:
		return slices.Contains(values, v)
	default:
		return slices.Contains(values, fmt.Sprint(v))
	}
}
