// Package expr compiles and runs the CEL expressions of access policies
// (cel.dev/cel-go, the expression language of Kubernetes admission
// policies, Envoy RBAC and agentgateway). config compiles every expression
// when the file loads, so a mistake is reported with its position; the
// policy runs the compiled programs.
package expr

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
)

// Vars are what an expression sees: the signed-in user, and in rules over
// what an MCP client asks for, the request.
type Vars struct {
	// User has sub, email, email_verified, name, groups and claims.
	User map[string]any
	// MCP has method, name and uri; empty strings at authorization.
	MCP map[string]any
}

// Program is a compiled expression.
type Program struct {
	src string
	prg cel.Program
}

var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("user", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("mcp", cel.MapType(cel.StringType, cel.DynType)),
	)
})

// Compile compiles src, which must yield a bool. The error is the
// compiler's first message.
func Compile(src string) (*Program, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		return nil, fmt.Errorf("the expression does not compile: %s", msg)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("the expression yields %s; it must be true or false", t)
	}
	prg, err := e.Program(ast, cel.CostLimit(costLimit))
	if err != nil {
		return nil, fmt.Errorf("the expression cannot run: %v", err)
	}
	return &Program{src: src, prg: prg}, nil
}

// costLimit bounds what one evaluation may do, so that no expression can
// hold a request: far above any rule over a user's claims.
const costLimit = 100_000

// Eval runs the expression on v: true only when it yields true; an error
// (a missing key, a value of another type) is false, with the error.
func (p *Program) Eval(v Vars) (bool, error) {
	out, _, err := p.prg.Eval(map[string]any{"user": v.User, "mcp": v.MCP})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("the expression yielded %v, not true or false", out.Value())
	}
	return b, nil
}

// String is the expression's source.
func (p *Program) String() string { return p.src }
