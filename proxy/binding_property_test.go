package proxy

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// The binding property test (token binding, docs/token-binding.md): seeded
// random interleavings of users, MCP clients, binding modes, expiries,
// refreshes and disconnects, driven through the proxy's real endpoints,
// with a check on every token the proxy injects that it belongs to the
// binding of the request's grant.
//
// Whose a remote token is, is decided by the test, not by the proxy: the
// fake remote authorization server records, for every token it issues, the
// binding identity it issued it for (the route and user under per_user, the
// one MCP client authorization under per_session, the route under
// service_account), learned from the authorization code the test minted for
// that consent, or from the refresh token a refresh presented.
//
// The files by job: this one has the generator, the tests and the
// deliberately broken store (swapUsersTokens) that the test must catch;
// binding_property_model_test.go what the test believes the proxy holds;
// binding_property_remote_test.go the fake remote server;
// binding_property_grant_test.go, binding_property_requests_test.go and
// binding_property_ops_test.go the operations;
// binding_property_check_test.go the checks of the property.
//
// A failure names the seed and the operation; rerun it with
//
//	go test ./proxy -run 'TestBindingProperty$' -seed=N -ops=M
var (
	bindingSeed       = flag.Uint64("seed", 1, "seed of the TestBindingProperty generator")
	bindingOps        = flag.Int("ops", 3000, "operations TestBindingProperty runs")
	bindingNULSubject = flag.Bool("nul-subject", true, "TestBindingProperty also signs in a user whose subject is alice's with a NUL byte inside")
)

const (
	bpUpstreamHost = "upstream.test"
	bpASHost       = "as.test"
	bpClientHost   = "client.test"
	bpASClientID   = "mcp-proxy-at-as"
	bpAdmin        = "alice"
	bpRedirect     = "https://client.test/cb"
	bpUpstreamURL  = "https://upstream.test/mcp"

	bpBinding = "binding" // a token of another binding was used, or keys collide
	bpModel   = "model"   // the proxy's behaviour differs from the model's prediction
	bpFlow    = "flow"    // an endpoint answered something unexpected
)

var (
	bpRouteSpecs = []struct {
		host    string
		binding config.BindingMode
	}{
		{"pu.test", config.BindingPerUser},
		{"pu2.test", config.BindingPerUser}, // same remote server as pu.test
		{"ps.test", config.BindingPerSession},
		{"sa.test", config.BindingServiceAccount},
	}
	bpClients = []string{"https://client.test/a.json", "https://client.test/b.json", "https://client.test/c.json"}
)

type bpStats struct {
	ops, grants, refusedGrants, flows, requests, bursts, burstRequests, injected, refreshes, refusedRefreshes,
	rejections, challenges, disconnects, foreignDisconnects, clientRefreshes, listings int
}

// bpViolation is the first property or model violation of a run.
type bpViolation struct {
	Seed   uint64
	Op     int
	Kind   string
	Msg    string
	Recent []string
}

func (v *bpViolation) Error() string {
	return fmt.Sprintf("seed %d, operation %d: %s violation: %s\nlast operations:\n  %s\nreproduce: go test ./proxy -run 'TestBindingProperty$' -seed=%d -ops=%d",
		v.Seed, v.Op, v.Kind, v.Msg, strings.Join(v.Recent, "\n  "), v.Seed, v.Op+1)
}

type bpRun struct {
	t      *testing.T
	seed   uint64
	p      *Proxy
	clock  *bpClock
	remote *bpRemote
	rng    *rand.Rand

	users      []string
	routes     []*bpRoute
	ids        map[string]*bpIdentity
	idList     []*bpIdentity // in creation order, for deterministic picks
	byKey      map[string]*bpIdentity
	grants     []*bpGrant
	downstream map[string]bool // every token the proxy issued to an MCP client
	// tamper runs after a consent at the remote authorization server stored
	// a new token for id (the deliberately broken variant).
	tamper func(r *bpRun, id *bpIdentity)

	start  time.Time // the fake clock's start
	op     int
	recent []string
	stats  bpStats
}

func newBindingRun(t *testing.T, seed uint64) *bpRun {
	t.Helper()
	clock := &bpClock{}
	// Ahead of the real clock, on which x/oauth2 computes the expiry of a
	// code exchange's token (the authorization server compensates).
	clock.set(time.Now().Add(time.Hour).Truncate(time.Second))
	r := &bpRun{
		t: t, seed: seed, clock: clock, remote: newBPRemote(clock),
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		users: []string{"alice", "bob", "carol"},
		ids:   map[string]*bpIdentity{}, byKey: map[string]*bpIdentity{}, downstream: map[string]bool{},
	}
	r.start = clock.now()
	if *bindingNULSubject {
		r.users = append(r.users, "al\x00ice")
	}
	r.p = newBindingProxy(t, clock.now, r.remote)
	for _, s := range bpRouteSpecs {
		rt := r.p.current().routes[s.host]
		if rt == nil || rt.binding() != s.binding {
			t.Fatalf("route %s: %+v", s.host, rt)
		}
		r.routes = append(r.routes, &bpRoute{host: s.host, binding: s.binding, rt: rt, sessions: map[string]string{}})
	}
	return r
}

// newBindingProxy builds a proxy with one route per binding mode (two
// per_user routes to the same remote server), all authorizing at as.test
// with static endpoints.
func newBindingProxy(t *testing.T, now func() time.Time, remote http.RoundTripper) *Proxy {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, s := range bpRouteSpecs {
		hosts = append(hosts, s.host)
	}
	leaf, err := ca.Issue(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("tls: {cert_file: c.pem, key_file: k.pem}\n")
	b.WriteString("identity_provider: {issuer: https://idp.test, client_id: p, client_secret: s}\n")
	b.WriteString("audit: {file: audit.log}\n")
	b.WriteString("routes:\n")
	for _, s := range bpRouteSpecs {
		fmt.Fprintf(&b, "  - from: https://%s\n    to: https://%s\n    mcp:\n      server:\n", s.host, bpUpstreamHost)
		fmt.Fprintf(&b, "        upstream_token_binding: %s\n", s.binding)
		fmt.Fprintf(&b, "        upstream_oauth2: {client_id: %s, endpoint: {auth_url: https://%s/authorize, token_url: https://%s/token}}\n",
			bpASClientID, bpASHost, bpASHost)
		if s.binding == config.BindingServiceAccount {
			fmt.Fprintf(&b, "        service_account: {admin: %s}\n", bpAdmin)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(dir, "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Now: now, Backend: store.NewMemoryClock(now), Transport: remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (r *bpRun) fail(kind, format string, args ...any) *bpViolation {
	return &bpViolation{Seed: r.seed, Op: r.op, Kind: kind, Msg: fmt.Sprintf(format, args...), Recent: slices.Clone(r.recent)}
}

func (r *bpRun) note(format string, args ...any) {
	s := fmt.Sprintf("%d: %s", r.op, fmt.Sprintf(format, args...))
	r.recent = append(r.recent, s)
	if len(r.recent) > 25 {
		r.recent = r.recent[1:]
	}
}

// run executes ops operations and returns the first violation.
func (r *bpRun) run(ops int) *bpViolation {
	for r.op = 0; r.op < ops; r.op++ {
		r.stats.ops++
		if v := r.step(); v != nil {
			return v
		}
	}
	return nil
}

func (r *bpRun) step() *bpViolation {
	x := r.rng.IntN(100)
	switch {
	case x < 14 || len(r.grants) == 0:
		return r.opGrant()
	case x < 50:
		return r.opRequests(1)
	case x < 57:
		return r.opRequests(2 + r.rng.IntN(5))
	case x < 72:
		return r.opAdvance()
	case x < 76:
		return r.opDisconnect()
	case x < 78:
		return r.opForeignDisconnect()
	case x < 83:
		return r.opRefuseRefresh()
	case x < 86:
		return r.opRemoteRejects()
	case x < 93:
		return r.opClientRefresh()
	default:
		return r.opListConnections()
	}
}

func bpPick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// session returns the id of user's browser session on the route, as the
// identity provider's sign-in would have made it.
func (r *bpRun) session(rt *bpRoute, user string) string {
	if sid := rt.sessions[user]; sid != "" {
		return sid
	}
	sid := fmt.Sprintf("sid-%016x%016x", r.rng.Uint64(), r.rng.Uint64())
	s := &login.Session{Identity: request.Identity{Subject: user}, Expires: r.clock.now().Add(10 * 365 * 24 * time.Hour)}
	if err := r.p.putSession(sid, s); err != nil {
		r.t.Fatal(err)
	}
	rt.sessions[user] = sid
	return sid
}

// browse sends a browser request with the session cookie.
func (r *bpRun) browse(method, u, sid string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: sid})
	}
	return do(r.p, req)
}

func bpShow(u string) string { return strings.ReplaceAll(u, "\x00", `\x00`) }

// TestBindingProperty runs the generator and checks every injected token.
func TestBindingProperty(t *testing.T) {
	r := newBindingRun(t, *bindingSeed)
	start := time.Now()
	if v := r.run(*bindingOps); v != nil {
		t.Fatal(v)
	}
	s := r.stats
	t.Logf("seed %d: %d operations in %s: %d grants (%d remote consents, %d refused for a missing shared token), %d requests (%d in %d parallel bursts) with %d injected tokens checked, %d challenged; %d upstream refreshes (%d refused), %d remote rejections, %d disconnects, %d foreign disconnects refused, %d client refreshes, %d connection lists; fake time %s",
		r.seed, s.ops, time.Since(start).Round(time.Millisecond), s.grants, s.flows, s.refusedGrants, s.requests, s.burstRequests, s.bursts,
		s.injected, s.challenges, s.refreshes, s.refusedRefreshes, s.rejections, s.disconnects, s.foreignDisconnects, s.clientRefreshes, s.listings,
		r.clock.now().Sub(r.start).Round(time.Minute))
	if *bindingOps >= 3000 && (s.injected == 0 || s.refreshes == 0 || s.refusedRefreshes == 0 || s.rejections == 0 || s.bursts == 0 || s.flows == 0) {
		t.Errorf("the run did not exercise every case: %+v", s)
	}
}

// swapUsersTokens is the deliberately broken store: after a user connects
// on a per_user route, that user's token and another user's swap keys.
func swapUsersTokens(r *bpRun, id *bpIdentity) {
	if id.route.binding != config.BindingPerUser {
		return
	}
	for _, other := range r.known(true) {
		if other.route != id.route || other.user == id.user {
			continue
		}
		ctx := context.Background()
		a, errA := r.p.upstreamToken(id.route.host, id.key)
		b, errB := r.p.upstreamToken(other.route.host, other.key)
		if errA != nil || errB != nil || a == nil || b == nil {
			r.t.Fatalf("tamper: %v %v", errA, errB)
		}
		if r.p.current().routes[id.route.host].tokens.Records.Put(ctx, id.key, b, time.Time{}) != nil || r.p.current().routes[other.route.host].tokens.Records.Put(ctx, other.key, a, time.Time{}) != nil {
			r.t.Fatal("tamper: put failed")
		}
		r.note("  TAMPER: swapped the tokens of %s and %s", id.name, other.name)
		return
	}
}

// TestBindingPropertyCatchesAWrongKey runs the same generator against a
// deliberately corrupted store and requires the check to report it.
func TestBindingPropertyCatchesAWrongKey(t *testing.T) {
	r := newBindingRun(t, *bindingSeed)
	r.tamper = swapUsersTokens
	v := r.run(max(*bindingOps, 3000))
	if v == nil {
		t.Fatalf("seed %d: %d operations on a store with swapped tokens, and the check reported nothing", r.seed, r.stats.ops)
	}
	if v.Kind != bpBinding {
		t.Fatalf("the check reported a %s violation, want a binding violation: %v", v.Kind, v)
	}
	t.Logf("the broken store was caught after %d operations: %s", v.Op+1, v.Msg)
}

// TestBindingPropertyKeySemantics checks the binding modes on the keys
// directly: who shares a key and who does not.
func TestBindingPropertyKeySemantics(t *testing.T) {
	p := newBindingProxy(t, time.Now, nil)
	pu, pu2, ps, sa := p.current().routes["pu.test"], p.current().routes["pu2.test"], p.current().routes["ps.test"], p.current().routes["sa.test"]
	other := "https://upstream.test/other"
	type keyed struct{ name, key string }
	var all []keyed
	k := func(rt *route, user, session, up string) string {
		key := rt.bindingKey(user, session, up)
		all = append(all, keyed{fmt.Sprintf("%s %s %s %s", rt.host(), user, session, up), key})
		return key
	}
	eq := func(what, a, b string) {
		t.Helper()
		if a != b {
			t.Errorf("%s: %q != %q", what, a, b)
		}
	}
	ne := func(what, a, b string) {
		t.Helper()
		if a == b {
			t.Errorf("%s: both %q", what, a)
		}
	}
	for _, rt := range []*route{pu, pu2} {
		eq(rt.host()+": one user's two authorizations share a key", k(rt, "alice", "s1", bpUpstreamURL), k(rt, "alice", "s2", bpUpstreamURL))
		ne(rt.host()+": users differ", k(rt, "alice", "s1", bpUpstreamURL), k(rt, "bob", "s1", bpUpstreamURL))
		ne(rt.host()+": remote endpoints differ", k(rt, "alice", "s1", bpUpstreamURL), k(rt, "alice", "s1", other))
	}
	ne("per_session: one user's two authorizations differ", k(ps, "alice", "s1", bpUpstreamURL), k(ps, "alice", "s2", bpUpstreamURL))
	ne("per_session: users differ", k(ps, "alice", "s1", bpUpstreamURL), k(ps, "bob", "s1", bpUpstreamURL))
	eq("per_session: one authorization keeps its key", k(ps, "alice", "s1", bpUpstreamURL), k(ps, "alice", "s1", bpUpstreamURL))
	eq("service_account: all users share the key", k(sa, "alice", "s1", bpUpstreamURL), k(sa, "bob", "s2", bpUpstreamURL))
	ne("service_account: remote endpoints differ", k(sa, "alice", "s1", bpUpstreamURL), k(sa, "alice", "s1", other))
	// No key of one route is a key of another, even with the same remote
	// server and user.
	routeOf := func(name string) string { return strings.SplitN(name, " ", 2)[0] }
	for i, a := range all {
		for _, b := range all[i+1:] {
			if routeOf(a.name) != routeOf(b.name) && a.key == b.key {
				t.Errorf("routes share a key: %s and %s both have %q", a.name, b.name, a.key)
			}
		}
	}
	// A user's keys, and only theirs, start with the user's prefix (the
	// connections page and disconnect list by it).
	for _, rt := range []*route{pu, ps} {
		if !strings.HasPrefix(rt.bindingKey("alice", "s1", bpUpstreamURL), rt.userKeyPrefix("alice")) ||
			strings.HasPrefix(rt.bindingKey("alice2", "s1", bpUpstreamURL), rt.userKeyPrefix("alice")) ||
			strings.HasPrefix(rt.bindingKey("bob", "s1", bpUpstreamURL), rt.userKeyPrefix("alice")) {
			t.Errorf("%s: user key prefixes do not separate users", rt.host())
		}
	}
}
