package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/policy"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

const policyUsage = `Usage: mcp-proxy policy check -config FILE -route HOST -claims FILE [-method METHOD [-name NAME | -uri URI]]

Evaluates the access policy of the route for HOST, as the proxy would, for
a user described by the claims in FILE (a JSON object as the identity
provider sends them: sub, email, email_verified, groups, ...), and prints
the decision and the rule that made it. With -method it decides a request
of that method, naming a tool or prompt (-name) or a resource (-uri).
Exits 0 when allowed, 1 when denied, 2 on a usage or configuration error.
`

// policyCommand runs mcp-proxy policy SUBCOMMAND.
func policyCommand(args []string, env Env) int {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help" || args[0] == "--help") {
			fmt.Fprint(env.Stdout, policyUsage)
			return ExitOK
		}
		fmt.Fprint(env.Stderr, policyUsage)
		return ExitUsage
	}
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyUsage) }
	cfgPath := fs.String("config", "config.yaml", "the configuration `file`")
	host := fs.String("route", "", "the `host` of the route (its from)")
	claimsFile := fs.String("claims", "", "a JSON `file` of the user's claims")
	method := fs.String("method", "", "a JSON-RPC `method`, such as tools/call")
	name := fs.String("name", "", "the tool or prompt `name` the request names")
	uri := fs.String("uri", "", "the resource `URI` the request names")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	cfg, err := config.LoadFile(env.Dir, *cfgPath, env.LookupEnv)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitUsage
	}
	rc := findRoute(cfg, *host)
	if rc == nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy policy check: no route of %s answers for %q\n", *cfgPath, *host)
		return ExitUsage
	}
	id, err := readClaims(env, cfg, *claimsFile)
	if err != nil {
		fmt.Fprintf(env.Stderr, "mcp-proxy policy check: -claims: %v\n", err)
		return ExitUsage
	}
	if rc.Policy == nil {
		fmt.Fprintf(env.Stdout, "allowed: %s has no policy: every signed-in user may use all of it\n", rc.Key())
		return ExitOK
	}
	p := policy.New(rc, id.Source, cfg.IdentityProvider.ClaimsMaxAgeDuration(), func() time.Time { return id.SignedIn })
	what, d := rc.Key(), p.Route(*id)
	if d.Allowed && *method != "" {
		m := &jsonrpc.Message{Method: *method, ID: []byte("1"), Params: jsonrpc.Params{Name: *name, URI: *uri}}
		what = strings.TrimSpace(*method+" "+*name+*uri) + " on " + rc.Key()
		d = p.Message(*id, m)
	}
	fmt.Fprintf(env.Stdout, "%s: %s for %s, %s\n", verdict(d), what, describeUser(id), byRule(d))
	if !d.Allowed {
		return ExitFailed
	}
	return ExitOK
}

func findRoute(cfg *config.Config, host string) *config.Route {
	for i := range cfg.Routes {
		if rc := &cfg.Routes[i]; strings.EqualFold(rc.Key(), host) || strings.EqualFold(rc.From, host) {
			return rc
		}
	}
	return nil
}

// readClaims makes the user the proxy would make of a sign-in with these
// claims, under the configuration's sign-in settings.
func readClaims(env Env, cfg *config.Config, file string) (*request.Identity, error) {
	if file == "" {
		return nil, errors.New("missing; name a JSON file of the user's claims")
	}
	b, err := os.ReadFile(env.path(file))
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %v", file, err)
	}
	if s, _ := claims["sub"].(string); s == "" {
		return nil, fmt.Errorf("%s has no sub", file)
	}
	idp := cfg.IdentityProvider
	p := &login.Provider{Issuer: idp.Issuer, Scopes: cfg.IDPScopes(), GroupsClaim: idp.GroupsClaim}
	return p.Identity(claims), nil
}

func verdict(d policy.Decision) string {
	if d.Allowed {
		return "allowed"
	}
	return "denied"
}

func describeUser(id *request.Identity) string {
	parts := []string{}
	if id.Email != "" {
		e := id.Email
		if !id.EmailVerified {
			e += " unverified"
		}
		parts = append(parts, e)
	}
	groups := "none"
	if len(id.Groups) > 0 {
		groups = strings.Join(id.Groups, " ")
	}
	parts = append(parts, "groups: "+groups)
	return id.Subject + " (" + strings.Join(parts, ", ") + ")"
}

func byRule(d policy.Decision) string {
	if d.Rule == "" {
		return d.Why
	}
	return "by " + d.Rule + " (" + d.Why + ")"
}
