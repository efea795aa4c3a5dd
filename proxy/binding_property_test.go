package proxy

import (
	"context"
	"encoding/json"
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
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
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
		rt := r.p.routes[s.host]
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
	s := &login.Session{Subject: user, Expires: r.clock.now().Add(10 * 365 * 24 * time.Hour)}
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

type bpReq struct {
	g     *bpGrant
	tok   bpDownstream
	tag   string
	valid bool
	rec   *httptest.ResponseRecorder
}

// bpOutcome is the model's prediction for one binding's requests in an
// operation.
type bpOutcome struct {
	present  bool // the proxy holds a token for the binding
	refresh  bool // the token expired: the request waits for its refresh
	behind   bool // the token is within its refresh window: it is used and refreshed in the background
	refused  bool // and the authorization server refuses the refresh
	rejected bool // the remote server refuses the (unrefreshed) token
	token    string
	renewed  *bpASEvent // the background refresh
}

// opRequests sends n requests at once (n > 1: in parallel) with the MCP
// clients' tokens, and checks every token the remote server received.
func (r *bpRun) opRequests(n int) *bpViolation {
	now := r.clock.now()
	reqs := make([]*bpReq, n)
	var desc []string
	var live []*bpGrant
	for _, g := range r.grants {
		if g.id.present {
			live = append(live, g)
		}
	}
	for i := range reqs {
		g := bpPick(r.rng, r.grants)
		if len(live) > 0 && r.rng.IntN(10) < 7 {
			g = bpPick(r.rng, live)
		}
		if !now.Before(g.access[len(g.access)-1].expires) && r.rng.IntN(5) != 0 {
			// The MCP client notices its token expired and refreshes it.
			if v := r.clientRefresh(g); v != nil {
				return v
			}
		}
		tok := g.access[len(g.access)-1]
		if len(g.access) > 1 && r.rng.IntN(5) == 0 {
			tok = bpPick(r.rng, g.access)
		}
		reqs[i] = &bpReq{g: g, tok: tok, tag: fmt.Sprintf("%d.%d", r.op, i), valid: now.Before(tok.expires)}
		desc = append(desc, fmt.Sprintf("#%d(%s, client token valid: %v)", g.n, g.id.name, reqs[i].valid))
	}
	if n == 1 {
		r.note("request %s", desc[0])
	} else {
		r.note("burst of %d: %s", n, strings.Join(desc, ", "))
		r.stats.bursts++
		r.stats.burstRequests += n
	}
	send := func(q *bpReq) {
		req := httptest.NewRequest(http.MethodPost, "https://"+q.g.route.host+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Authorization", "Bearer "+q.tok.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Op", q.tag)
		q.rec = do(r.p, req)
	}
	if n == 1 {
		send(reqs[0])
	} else {
		var wg sync.WaitGroup
		for _, q := range reqs {
			wg.Go(func() { send(q) })
		}
		wg.Wait()
	}
	for _, rt := range r.p.routes {
		rt.tokens.Settle()
	}
	hits := make([][]bpHit, n)
	for i, q := range reqs {
		hits[i] = r.remote.takeHits(q.tag)
	}
	events := r.remote.takeEvents()

	// The property: every token the remote server received belongs to the
	// binding of the request's grant, and no refresh used another
	// binding's refresh token.
	for i, q := range reqs {
		for _, h := range hits[i] {
			if len(h.auth) != 1 || !strings.HasPrefix(h.auth[0], "Bearer ") {
				return r.fail(bpBinding, "request %s of grant #%d reached the remote server with Authorization %q", q.tag, q.g.n, h.auth)
			}
			tok := strings.TrimPrefix(h.auth[0], "Bearer ")
			if r.downstream[tok] {
				return r.fail(bpBinding, "request %s of grant #%d passed the MCP client's own token to the remote server", q.tag, q.g.n)
			}
			info, ok := r.remote.lookup(tok)
			if !ok || info.refresh {
				return r.fail(bpBinding, "request %s of grant #%d carried %q, which the authorization server never issued as an access token", q.tag, q.g.n, tok)
			}
			if info.identity != q.g.id.name {
				return r.fail(bpBinding, "request %s of grant #%d (user %s, client %s, binding %s, key %q) carried %s, the remote token of %s",
					q.tag, q.g.n, bpShow(q.g.user), q.g.client, q.g.id.name, q.g.id.key, tok, info.identity)
			}
			r.stats.injected++
		}
	}
	active := map[*bpIdentity]bool{}
	for _, q := range reqs {
		if q.valid {
			active[q.g.id] = true
		}
	}
	byID := map[*bpIdentity][]bpASEvent{}
	for _, ev := range events {
		id := r.ids[ev.identity]
		switch {
		case ev.grantType != "refresh_token" || ev.problem != "":
			return r.fail(bpModel, "unexpected request to the authorization server: %+v", ev)
		case id == nil:
			return r.fail(bpBinding, "the proxy presented refresh token %q, which the authorization server never issued", ev.presented)
		}
		if !active[id] {
			return r.fail(bpBinding, "the proxy refreshed %s's token while serving %s", ev.identity, strings.Join(desc, ", "))
		}
		byID[id] = append(byID[id], ev)
	}

	// The model: which requests succeed, with which token, and what the
	// proxy holds afterwards.
	out := map[*bpIdentity]*bpOutcome{}
	for _, q := range reqs {
		id := q.g.id
		if !active[id] || out[id] != nil {
			continue
		}
		o := &bpOutcome{present: id.present, token: id.access}
		due := id.present && !id.expiry.IsZero() && !now.Add(id.skew()).Before(id.expiry)
		o.refresh = due && !now.Before(id.expiry)
		o.behind = due && !o.refresh
		evs := byID[id]
		switch {
		case !due && len(evs) > 0:
			return r.fail(bpModel, "the proxy refreshed %s's token (expiry %s) at %s", id.name, id.expiry, now)
		case o.behind && id.rejectArmed && len(evs) == 0:
			// The remote server's 401 dropped the token before the
			// background refresh read it.
		case due && len(evs) != 1:
			return r.fail(bpModel, "%s's token expires at %s, now %s: %d refreshes, want 1", id.name, id.expiry, now, len(evs))
		case due && evs[0].presented != id.refresh:
			return r.fail(bpModel, "the refresh of %s presented %s, want %s", id.name, evs[0].presented, id.refresh)
		case due && evs[0].refused != id.refuseArmed:
			return r.fail(bpModel, "the refresh of %s: refused %v, want %v", id.name, evs[0].refused, id.refuseArmed)
		}
		if due && len(evs) == 1 {
			r.stats.refreshes++
			if evs[0].refused {
				r.stats.refusedRefreshes++
			}
		}
		switch {
		case o.refresh:
			if o.refused = evs[0].refused; !o.refused {
				o.token = evs[0].access
			}
		case o.behind && len(evs) == 1:
			o.renewed = &evs[0]
		}
		o.rejected = id.present && !o.refresh && id.rejectArmed
		out[id] = o
	}
	reached := map[*bpIdentity]int{}
	for i, q := range reqs {
		o, rec, hs := out[q.g.id], q.rec, hits[i]
		if o == nil {
			o = &bpOutcome{} // no request of the binding had a valid client token
		}
		r.stats.requests++
		ok := rec.Code == http.StatusOK
		wantOK := q.valid && o.present && !o.refused && !o.rejected
		if wantOK && !ok && n > 1 && o.renewed != nil && o.renewed.refused {
			wantOK = false // a parallel request's background refresh was refused first and dropped the token
		}
		if ok != wantOK || (!ok && (rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`))) {
			return r.fail(bpModel, "request %s of grant #%d (%s): %d %s; the model expected success %v (%+v)", q.tag, q.g.n, q.g.id.name, rec.Code, rec.Body, wantOK, o)
		}
		if !ok {
			r.stats.challenges++
		}
		wantHits := 0
		switch {
		case wantOK:
			wantHits = 1
		case q.valid && o.rejected:
			wantHits = len(hs) // reached the remote server, or found the token dropped by a parallel request
			if n == 1 {
				wantHits = 1
			}
			reached[q.g.id] += len(hs)
		}
		if len(hs) != wantHits || len(hs) > 1 {
			return r.fail(bpModel, "request %s of grant #%d (%s) reached the remote server %d times, want %d (%+v)", q.tag, q.g.n, q.g.id.name, len(hs), wantHits, o)
		}
		if len(hs) == 1 && n > 1 && o.renewed != nil && hs[0].auth[0] == "Bearer "+o.renewed.access {
			continue // a parallel request's background refresh ended first
		}
		if len(hs) == 1 && hs[0].auth[0] != "Bearer "+o.token {
			return r.fail(bpModel, "request %s of grant #%d (%s) carried %s, want %s", q.tag, q.g.n, q.g.id.name, hs[0].auth[0], o.token)
		}
	}
	for id, o := range out {
		switch {
		case o.behind && o.rejected:
			// The 401 and the background refresh raced: the proxy holds
			// the refreshed token, or none.
			ut, err := r.p.upstreamToken(id.route.host, id.key)
			if err != nil {
				return r.fail(bpFlow, "the token of %s: %v", id.name, err)
			}
			if reached[id] == 0 {
				return r.fail(bpModel, "no request of %s reached the remote server", id.name)
			}
			switch {
			case ut == nil:
				id.present = false
			case o.renewed == nil || o.renewed.refused || ut.AccessToken != o.renewed.access:
				return r.fail(bpModel, "after a 401 and a background refresh %s holds %s, want none or the refreshed token", id.name, ut.AccessToken)
			default:
				ev := o.renewed
				id.access, id.refresh, id.expiry, id.issued = ev.access, ev.refresh, ev.expiry, r.clock.now()
				id.refuseArmed, id.rejectArmed = false, false
			}
			r.stats.rejections++
		case o.behind && o.renewed != nil && o.renewed.refused:
			id.present = false
		case o.behind && o.renewed != nil:
			ev := o.renewed
			id.access, id.refresh, id.expiry, id.issued = ev.access, ev.refresh, ev.expiry, r.clock.now()
			id.refuseArmed, id.rejectArmed = false, false
		case o.rejected:
			if reached[id] == 0 {
				return r.fail(bpModel, "no request of %s reached the remote server", id.name)
			}
			r.stats.rejections++
			id.present = false
		case o.refused:
			id.present = false
		case o.refresh:
			ev := byID[id][0]
			id.access, id.refresh, id.expiry, id.issued = ev.access, ev.refresh, ev.expiry, r.clock.now()
			id.refuseArmed, id.rejectArmed = false, false
		}
	}
	return nil
}

// opAdvance moves the fake clock on a 10-second grid; every expiry is 5
// seconds off it, so no comparison is ever a tie.
func (r *bpRun) opAdvance() *bpViolation {
	switch x := r.rng.IntN(20); {
	case x < 5: // into the refresh window of a token
		var ids []*bpIdentity
		now := r.clock.now()
		for _, id := range r.idList {
			if id.present && !id.expiry.IsZero() && now.Add(id.skew()).Before(id.expiry) {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			id := bpPick(r.rng, ids)
			d := id.expiry.Add(-id.skew() + 5*time.Second).Sub(now)
			r.note("advance %s, into the refresh window of %s", d, id.name)
			r.clock.add(d)
			return nil
		}
		fallthrough
	case x < 7:
		d := time.Duration(180+r.rng.IntN(360)) * 10 * time.Second
		r.note("advance %s", d)
		r.clock.add(d)
	default:
		d := time.Duration(1+r.rng.IntN(30)) * 10 * time.Second
		r.note("advance %s", d)
		r.clock.add(d)
	}
	return nil
}

// opDisconnect removes a binding's token: the user's disconnect on the
// connections page, or for the shared token the operator dropping it.
func (r *bpRun) opDisconnect() *bpViolation {
	ids := r.known(false)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.stats.disconnects++
	if id.user == "" {
		r.note("the operator drops the shared token of %s (held: %v)", id.name, id.present)
		if err := r.p.routes[id.route.host].tokens.Drop(context.Background(), id.key); err != nil {
			return r.fail(bpFlow, "%v", err)
		}
		id.present = false
		return nil
	}
	r.note("%s disconnects %s (held: %v)", bpShow(id.user), id.name, id.present)
	rec := r.disconnect(id.route, id.user, id.key)
	want := http.StatusNotFound
	if id.present {
		want = http.StatusOK
	}
	if rec.Code != want {
		if v := r.checkStored(id); v != nil {
			return v
		}
		return r.fail(bpModel, "%s disconnecting %s: %d %s, want %d", bpShow(id.user), id.name, rec.Code, rec.Body, want)
	}
	id.present = false
	return nil
}

// checkStored reports a token stored under id's key that the authorization
// server issued for another binding.
func (r *bpRun) checkStored(id *bpIdentity) *bpViolation {
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	if err != nil || ut == nil {
		return nil
	}
	if info, ok := r.remote.lookup(ut.AccessToken); !ok || info.identity != id.name || ut.Key != id.key {
		return r.fail(bpBinding, "the token stored under the key of %s is %s, the remote token of %q (its Key field %q)", id.name, ut.AccessToken, info.identity, ut.Key)
	}
	return nil
}

func (r *bpRun) disconnect(rt *bpRoute, user, key string) *httptest.ResponseRecorder {
	sid := r.session(rt, user)
	req := httptest.NewRequest(http.MethodPost, "https://"+rt.host+authserver.PathDisconnect,
		strings.NewReader(url.Values{"csrf": {rt.rt.as.FormToken(sid, authserver.PathDisconnect)}, "connection": {authserver.ConnectionID(key)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: sid})
	return do(r.p, req)
}

// opForeignDisconnect: a user tries to disconnect another user's binding
// by its connection id; the proxy must not find it.
func (r *bpRun) opForeignDisconnect() *bpViolation {
	var ids []*bpIdentity
	for _, id := range r.known(true) {
		if id.user != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	other := bpPick(r.rng, r.users)
	if other == id.user {
		return nil
	}
	r.note("%s tries to disconnect %s", bpShow(other), id.name)
	rec := r.disconnect(id.route, other, id.key)
	if rec.Code != http.StatusNotFound {
		return r.fail(bpBinding, "%s disconnecting %s's binding %s: %d %s, want 404", bpShow(other), bpShow(id.user), id.name, rec.Code, rec.Body)
	}
	ut, err := r.p.upstreamToken(id.route.host, id.key)
	if err != nil || ut == nil {
		return r.fail(bpBinding, "%s's token is gone after %s's disconnect attempt (%v)", id.name, bpShow(other), err)
	}
	r.stats.foreignDisconnects++
	return nil
}

func (r *bpRun) opRefuseRefresh() *bpViolation {
	ids := r.known(true)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.note("the authorization server will refuse the next refresh of %s", id.name)
	r.remote.mu.Lock()
	r.remote.refuse[id.refresh] = true
	r.remote.mu.Unlock()
	id.refuseArmed = true
	return nil
}

func (r *bpRun) opRemoteRejects() *bpViolation {
	ids := r.known(true)
	if len(ids) == 0 {
		return nil
	}
	id := bpPick(r.rng, ids)
	r.note("the remote server stops accepting %s of %s", id.access, id.name)
	r.remote.mu.Lock()
	r.remote.reject[id.access] = true
	r.remote.mu.Unlock()
	id.rejectArmed = true
	return nil
}

// opClientRefresh: an MCP client refreshes its own token; the new one
// keeps the grant and its binding.
func (r *bpRun) opClientRefresh() *bpViolation { return r.clientRefresh(bpPick(r.rng, r.grants)) }

func (r *bpRun) clientRefresh(g *bpGrant) *bpViolation {
	now := r.clock.now()
	r.note("grant #%d's client refreshes its token", g.n)
	rec := do(r.p, bpTokenRequest(g.route.host, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.refresh}, "client_id": {g.client}}))
	if !now.Before(g.refreshExpires) {
		if rec.Code != http.StatusBadRequest {
			return r.fail(bpModel, "an expired refresh token of grant #%d: %d %s", g.n, rec.Code, rec.Body)
		}
		return nil
	}
	var tr tokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tr) != nil || tr.AccessToken == "" {
		return r.fail(bpFlow, "refresh of grant #%d: %d %s", g.n, rec.Code, rec.Body)
	}
	at, err := r.p.accessToken(tr.AccessToken)
	if err != nil || at == nil || at.Grant == nil {
		return r.fail(bpFlow, "the refreshed access token's record: %+v %v", at, err)
	}
	if at.Grant.ID != g.grantID || at.Grant.BindingKey != g.id.key || at.Grant.Subject != g.user {
		return r.fail(bpBinding, "grant #%d (%s, key %q) refreshed into grant %s of %s with key %q",
			g.n, g.id.name, g.id.key, at.Grant.ID, bpShow(at.Grant.Subject), at.Grant.BindingKey)
	}
	g.access = append(g.access, bpDownstream{tr.AccessToken, now.Add(authserver.AccessTokenTTL)})
	g.refresh, g.refreshExpires = tr.RefreshToken, now.Add(authserver.RefreshTokenTTL)
	r.downstream[tr.AccessToken], r.downstream[tr.RefreshToken] = true, true
	r.stats.clientRefreshes++
	return nil
}

// opListConnections: a user's connections page lists exactly the
// bindings of that user on that route that the proxy holds.
func (r *bpRun) opListConnections() *bpViolation {
	rt, user := bpPick(r.rng, r.routes), bpPick(r.rng, r.users)
	r.note("%s lists connections on %s", bpShow(user), rt.host)
	sid := r.session(rt, user)
	req := httptest.NewRequest(http.MethodGet, "https://"+rt.host+authserver.PathConnections, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: login.SessionCookie, Value: sid})
	rec := do(r.p, req)
	var body struct {
		Connections []authserver.Connection `json:"connections"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		return r.fail(bpFlow, "connections: %d %s", rec.Code, rec.Body)
	}
	got, want := []string{}, []string{}
	for _, c := range body.Connections {
		got = append(got, c.ID)
	}
	for _, id := range r.known(true) {
		if id.route == rt && id.user == user {
			want = append(want, authserver.ConnectionID(id.key))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return r.fail(bpBinding, "%s's connections on %s are %v, want %v", bpShow(user), rt.host, got, want)
	}
	r.stats.listings++
	return nil
}

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
		if r.p.routes[id.route.host].tokens.Records.Put(ctx, id.key, b, time.Time{}) != nil || r.p.routes[other.route.host].tokens.Records.Put(ctx, other.key, a, time.Time{}) != nil {
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
	pu, pu2, ps, sa := p.routes["pu.test"], p.routes["pu2.test"], p.routes["ps.test"], p.routes["sa.test"]
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
