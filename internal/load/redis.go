package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/bench"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/redisproc"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// The Redis phases (issue 26): two mcp-proxy replicas on one Redis behind a
// loopback balancer, every user authorized through it again.
//
//   - Redis stopped: redis-server (append-only file on) is stopped for
//     o.RedisOutage under load and started again. Requests go on from the
//     replicas' memory; a sign-in and a refresh sent meanwhile must get the
//     documented 503 storage_unavailable, at once; after Redis is back a
//     sign-in works again, nobody authorizes again and every record is
//     still there.
//   - a replica killed: its users go on through the other.
//   - Sentinel failover: a replica of the Redis and three Sentinels are
//     added, the proxies restarted onto redis_sentinel, and the primary
//     killed under load: the Sentinels promote the replica, both proxies
//     follow it (their /readyz reads the store, and a sign-in writes),
//     nothing fails and no record is lost.

// RedisProbeUsers is how many users the Redis phases sign in on purpose,
// besides the clients: the run's harness needs Users(o.Clients + o.Cohort
// + RedisProbeUsers).
const RedisProbeUsers = 4

// probeLimit bounds how long a sign-in or refresh may take to be refused
// while Redis is away: the proxy's own Redis timeouts are 2 s a dial, and a
// refused connection fails at once; the rest is a busy machine.
const probeLimit = 10 * time.Second

// followLimit bounds how long after Redis is back (or failed over) the
// proxies may take to write to it again.
const followLimit = 30 * time.Second

// redisPrefix is the proxies' storage.prefix (the default).
const redisPrefix = "mcp-proxy"

// redisRun is what the Redis phases share.
type redisRun struct {
	h         *bench.Harness
	o         Options
	reps      *bench.Replicas
	srv       *redisproc.Server // the Redis of the first two phases, the primary of the third at its start
	set       *redisproc.Set
	clients   []*client
	probes    []mockas.User
	first     int     // the index of the first probe user
	refresher *client // a probe user's client, kept aside for refresh probes
	refresh   string  // its current refresh token
}

// redisSection runs the Redis phases and adds them to rep.
func redisSection(ctx context.Context, h *bench.Harness, o Options, users, probes []mockas.User, rep *Report) error {
	dir := filepath.Join(h.Dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	srv, err := redisproc.StartServer(ctx, redisproc.ServerConfig{Dir: filepath.Join(dir, "primary"), AppendOnly: true, Password: "load-redis-password"})
	if err != nil {
		return fmt.Errorf("the Redis phases: %w", err)
	}
	r := &redisRun{h: h, o: o, srv: srv, probes: probes, first: len(users) + o.Cohort}
	defer func() {
		if r.set != nil {
			r.set.Close()
		}
		srv.Kill()
	}()
	if r.reps, err = h.StartReplicas(2, r.urlStorage()); err != nil {
		return fmt.Errorf("the Redis phases: starting the replicas: %w", err)
	}
	t0 := time.Now()
	if r.clients, err = authorizeAll(ctx, h, users, 0, o.Parallel); err != nil {
		return fmt.Errorf("the Redis phases: authorizing the users: %w", err)
	}
	if r.refresher, err = authorize(ctx, h, r.first, probes[0]); err != nil {
		return fmt.Errorf("the Redis phases: authorizing the refresh probe: %w", err)
	}
	if r.refresh, err = r.refresher.mc.RefreshToken(ctx); err != nil {
		return err
	}
	o.logf("redis: %d users authorized again, through 2 replicas on one Redis behind a balancer, in %s", len(r.clients), time.Since(t0).Round(time.Second))
	defer func() {
		for _, c := range append(r.clients, r.refresher) {
			c.mc.Close()
		}
	}()
	drive(ctx, r.clients, 3*time.Second, &Tally{}, nil) // warm-up: every replica has read every token once

	rep.Phases = append(rep.Phases, r.outagePhase(ctx))
	rep.Phases = append(rep.Phases, r.killPhase(ctx))
	p, err := r.failoverPhase(ctx, dir)
	if err != nil {
		return err
	}
	rep.Phases = append(rep.Phases, p)
	return nil
}

func (r *redisRun) urlStorage() string {
	return bench.RedisStorage(fmt.Sprintf("  redis_url: redis://:%s@%s/0\n", r.srv.Password, r.srv.Addr))
}

func (r *redisRun) sentinelStorage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  redis_sentinel:\n    master_name: %s\n    password: %s\n    addresses:\n", r.set.MasterName, r.srv.Password)
	for _, a := range r.set.SentinelAddrs() {
		fmt.Fprintf(&b, "      - %s\n", a)
	}
	return bench.RedisStorage(b.String())
}

// outagePhase stops redis-server for o.RedisOutage, 5 s into the phase,
// and runs 10 s after it is back.
func (r *redisRun) outagePhase(ctx context.Context) *Phase {
	o := r.o
	p := &Phase{Name: "Redis stopped (2 replicas, one Redis)", Tally: &Tally{}, Extended: true}
	before, after := 5*time.Second, 10*time.Second
	total := before + o.RedisOutage + after
	auth0 := r.authCounts()
	recs0, _ := r.records(ctx)
	m0 := r.metrics()
	var down, up, writes time.Duration
	var probes authCounts
	o.logf("redis: %d clients for %s, redis-server stopped at %s for %s", len(r.clients), total, before, o.RedisOutage)
	recs, _ := drive(ctx, r.clients, total, p.Tally, func(ctx context.Context, start time.Time) {
		sleep(ctx, before)
		r.srv.Stop()
		down = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s: redis-server stopped (SIGTERM; its append-only file written)", sec(down)))
		sleep(ctx, 2*time.Second)
		// What needs Redis while it is away gets the documented error.
		pr, d := r.signIn(ctx, 1)
		probes.add(d)
		p.Notes = append(p.Notes, "a sign-in while Redis is down: "+pr.String())
		p.Failures = append(p.Failures, pr.refused("a sign-in while Redis is down")...)
		pr = r.refreshProbe(ctx)
		p.Notes = append(p.Notes, "a refresh while Redis is down: "+pr.String())
		p.Failures = append(p.Failures, pr.refused("a refresh while Redis is down")...)
		sleep(ctx, down+o.RedisOutage-time.Since(start))
		if err := r.srv.Restart(ctx); err != nil {
			p.Failures = append(p.Failures, "redis-server did not start again: "+err.Error())
			return
		}
		up = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s: redis-server started again, on its append-only file", sec(up)))
		// Sign-ins work again once the replicas reach Redis.
		var pr2 probe
		pr2, writes, d = r.signInUntil(ctx, 2, start, followLimit)
		probes.add(d)
		p.Notes = append(p.Notes, "the first sign-in after Redis is back: "+pr2.String())
		if pr2.err != nil {
			p.Failures = append(p.Failures, fmt.Sprintf("no sign-in worked within %s of Redis's return: %s", followLimit, pr2))
		} else {
			p.Events = append(p.Events, fmt.Sprintf("%s: a sign-in works again", sec(writes)))
		}
		if pr := r.refreshProbe(ctx); pr.err != nil {
			p.Failures = append(p.Failures, "a refresh after Redis is back: "+pr.String())
		} else {
			p.Notes = append(p.Notes, "a refresh after Redis is back: "+pr.String())
		}
	})
	markAllValid(recs)
	p.Rows = windowed(recs, []window{{"before", 0, down}, {"Redis down", down, up}, {"Redis back", up, total}})
	if up > 0 && writes > 0 {
		p.Rows[len(p.Rows)-1].Recovery = writes - up
	}
	s := Summarize(recs, total)
	p.Notes = append(p.Notes, r.metricNotes(m0)...)
	p.Failures = append(p.Failures, ValidRules(s, "Redis was down or back")...)
	p.Failures = append(p.Failures, r.noneAuthorizedAgain(auth0, probes)...)
	p.Failures = append(p.Failures, r.nothingLost(ctx, recs0, p)...)
	if up > 0 {
		p.Failures = append(p.Failures, RecoveryRules(s, NotAnsweredAfter(recs, indexes(r.clients), up), len(r.clients), "Redis was back")...)
	}
	return p
}

// killPhase kills replica 1 at a quarter of o.RedisPhase: its clients'
// requests in flight fail, and they go on through replica 2.
func (r *redisRun) killPhase(ctx context.Context) *Phase {
	o := r.o
	p := &Phase{Name: "a replica killed", Tally: &Tally{}, Extended: true}
	auth0 := r.authCounts()
	conns0 := r.reps.Balancer.Connections()
	var at time.Duration
	o.logf("redis: %d clients for %s, replica 1 killed at %s", len(r.clients), o.RedisPhase, o.RedisPhase/4)
	recs, _ := drive(ctx, r.clients, o.RedisPhase, p.Tally, func(ctx context.Context, start time.Time) {
		sleep(ctx, o.RedisPhase/4)
		if err := r.reps.Kill(0); err != nil {
			p.Failures = append(p.Failures, "killing replica 1: "+err.Error())
			return
		}
		at = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s: replica 1 killed (SIGKILL); the balancer sends new connections to replica 2", sec(at)))
	})
	markAllValid(recs)
	s := Summarize(recs, o.RedisPhase)
	rec := recovery(recs, at)
	p.Rows = windowed(recs, []window{{"before", 0, at}, {"after", at, o.RedisPhase}})
	p.Rows[len(p.Rows)-1].Recovery = rec
	conns1 := r.reps.Balancer.Connections()
	p.Notes = append(p.Notes, fmt.Sprintf("%d clients' requests failed with replica 1 (in flight, or on its connections); each opened a new connection, to replica 2 (%d new connections to it), and went on with its tokens within %s; %d reconnections (%d failed)",
		s.ClientsFailed, conns1[1]-conns0[1], ms(rec), p.Tally.Reconnects.Load(), p.Tally.ReconnectFailures.Load()))
	for _, k := range s.Kinds() {
		if !strings.HasSuffix(k, "connection") && !strings.HasSuffix(k, "session lost") && !strings.HasSuffix(k, "timeout") {
			p.Failures = append(p.Failures, fmt.Sprintf("%d requests failed as %s: only the killed replica's connections may fail", s.ErrorsByKind[k], k))
		}
	}
	p.Failures = append(p.Failures, r.noneAuthorizedAgain(auth0, authCounts{})...)
	if at > 0 {
		p.Failures = append(p.Failures, RecoveryRules(s, NotAnsweredAfter(recs, indexes(r.clients), at), len(r.clients), "replica 1 was killed")...)
	}
	return p
}

// failoverPhase moves the Redis to Sentinel (a replica and three
// Sentinels; the proxies restarted onto redis_sentinel, one after the
// other), then kills the primary at a quarter of o.RedisPhase.
func (r *redisRun) failoverPhase(ctx context.Context, dir string) (*Phase, error) {
	o := r.o
	p := &Phase{Name: "Redis primary failed over (Sentinel)", Tally: &Tally{}, Extended: true}
	t0 := time.Now()
	var err error
	if r.set, err = redisproc.AttachSet(ctx, r.srv, redisproc.SetConfig{Dir: filepath.Join(dir, "sentinel")}); err != nil {
		return nil, fmt.Errorf("the Redis phases: adding a replica and three Sentinels: %w", err)
	}
	for i := range r.reps.Len() {
		if err := r.reps.Restart(i, r.sentinelStorage()); err != nil {
			return nil, fmt.Errorf("the Redis phases: restarting replica %d onto Sentinel: %w", i+1, err)
		}
	}
	o.logf("redis: a replica and three Sentinels added, both proxies restarted onto redis_sentinel, in %s", time.Since(t0).Round(time.Second))
	// Clients whose connections the restarts closed reconnect, and both
	// replicas read every token once.
	drive(ctx, r.clients, 5*time.Second, &Tally{}, nil)
	if err := r.set.WaitReplicated(ctx, 30*time.Second); err != nil {
		return nil, fmt.Errorf("the Redis phases: the replica is not in sync: %w", err)
	}

	auth0 := r.authCounts()
	recs0, _ := r.records(ctx)
	m0 := r.metrics()
	var killed, promoted, followed time.Duration
	var probes authCounts
	o.logf("redis: %d clients for %s, the Redis primary killed at %s", len(r.clients), o.RedisPhase, o.RedisPhase/4)
	recs, _ := drive(ctx, r.clients, o.RedisPhase, p.Tally, func(ctx context.Context, start time.Time) {
		sleep(ctx, o.RedisPhase/4)
		old := r.srv
		old.Kill()
		killed = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s: the Redis primary killed (SIGKILL)", sec(killed)))
		nu, err := r.set.WaitPrimary(ctx, old, followLimit)
		if err != nil {
			p.Failures = append(p.Failures, fmt.Sprintf("the Sentinels did not promote the replica within %s: %v", followLimit, err))
			return
		}
		promoted = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s: the Sentinels promoted the replica (%s)", sec(promoted), nu.Addr))
		deadline := time.Now().Add(followLimit)
		for !(r.reps.Ready(0) && r.reps.Ready(1)) {
			if time.Now().After(deadline) {
				p.Failures = append(p.Failures, fmt.Sprintf("the replicas' /readyz did not answer 200 within %s of the promotion: they do not follow the new primary", followLimit))
				return
			}
			sleep(ctx, 100*time.Millisecond)
		}
		p.Events = append(p.Events, fmt.Sprintf("%s: both replicas read from the new primary (/readyz 200)", sec(time.Since(start))))
		pr, at, d := r.signInUntil(ctx, 3, start, followLimit)
		probes.add(d)
		p.Notes = append(p.Notes, "the first sign-in after the failover: "+pr.String())
		if pr.err != nil {
			p.Failures = append(p.Failures, fmt.Sprintf("no sign-in worked within %s of the promotion: %s", followLimit, pr))
			return
		}
		followed = at
		p.Events = append(p.Events, fmt.Sprintf("%s: a sign-in works: the proxies write to the new primary", sec(followed)))
	})
	markAllValid(recs)
	p.Rows = windowed(recs, []window{{"before", 0, killed}, {"failing over", killed, promoted}, {"after", promoted, o.RedisPhase}})
	if followed > 0 {
		p.Rows[len(p.Rows)-1].Recovery = followed - killed
	}
	s := Summarize(recs, o.RedisPhase)
	p.Notes = append(p.Notes, r.metricNotes(m0)...)
	p.Failures = append(p.Failures, ValidRules(s, "the primary failed over")...)
	p.Failures = append(p.Failures, r.noneAuthorizedAgain(auth0, probes)...)
	p.Failures = append(p.Failures, r.nothingLost(ctx, recs0, p)...)
	if promoted > 0 {
		p.Failures = append(p.Failures, RecoveryRules(s, NotAnsweredAfter(recs, indexes(r.clients), promoted), len(r.clients), "the failover")...)
	}
	return p, nil
}

// markAllValid marks every failure as one while its user's tokens were
// valid: in the Redis phases every token (the proxy's to the MCP client,
// the remote server's to the proxy) was issued in this run and lives an
// hour.
func markAllValid(recs []Record) {
	for i := range recs {
		recs[i].Valid = recs[i].Kind != ""
	}
}

type window struct {
	name     string
	from, to time.Duration
}

// windowed is a row per window, of the records sent in it. A client that
// failed in a window counts as not recovered only if it had no answer
// after its last failure in the whole phase, later windows included.
func windowed(recs []Record, ws []window) []Row {
	lastOK, lastFail := map[int]time.Duration{}, map[int]time.Duration{}
	for _, rc := range recs {
		if rc.Kind == "" {
			lastOK[rc.Client] = max(lastOK[rc.Client], rc.At)
		} else {
			lastFail[rc.Client] = max(lastFail[rc.Client], rc.At)
		}
	}
	var rows []Row
	for _, w := range ws {
		var sel []Record
		failed := map[int]bool{}
		for _, rc := range recs {
			if rc.At >= w.from && rc.At < w.to {
				sel = append(sel, rc)
				if rc.Kind != "" {
					failed[rc.Client] = true
				}
			}
		}
		s := Summarize(sel, w.to-w.from)
		s.Unrecovered = 0
		for c := range failed {
			if lastOK[c] <= lastFail[c] {
				s.Unrecovered++
			}
		}
		rows = append(rows, Row{Label: w.name, Summary: s})
	}
	return rows
}

// recovery is how long after at every client that failed from then on had
// an answer again: the latest first success after a client's last failure.
func recovery(recs []Record, at time.Duration) time.Duration {
	lastFail := map[int]time.Duration{}
	for _, rc := range recs {
		if rc.Kind != "" && rc.At+rc.Took >= at {
			lastFail[rc.Client] = max(lastFail[rc.Client], rc.At)
		}
	}
	var worst time.Duration
	for c, f := range lastFail {
		first := time.Duration(-1)
		for _, rc := range recs {
			if rc.Client == c && rc.Kind == "" && rc.At > f && (first < 0 || rc.At+rc.Took < first) {
				first = rc.At + rc.Took
			}
		}
		if first > 0 {
			worst = max(worst, first-at)
		}
	}
	return worst
}

// authCounts are the sign-ins, authorizations and consents at both
// authorization servers, and the clients' browsers sent to authorize.
type authCounts struct {
	as, idp  map[string]int
	browsers int64
}

func (a *authCounts) add(d authCounts) {
	if a.as == nil {
		a.as, a.idp = map[string]int{}, map[string]int{}
	}
	for k, v := range d.as {
		a.as[k] += v
	}
	for k, v := range d.idp {
		a.idp[k] += v
	}
}

func (r *redisRun) authCounts() authCounts {
	return authCounts{as: r.h.AS().Counters(), idp: r.h.IdP().Counters(), browsers: authorizations(r.clients)}
}

func diffCounts(a, b authCounts) authCounts {
	d := authCounts{as: map[string]int{}, idp: map[string]int{}, browsers: b.browsers - a.browsers}
	for k, v := range b.as {
		d.as[k] = v - a.as[k]
	}
	for k, v := range b.idp {
		d.idp[k] = v - a.idp[k]
	}
	return d
}

// noneAuthorizedAgain: since before, nobody but the probes signed in,
// authorized or consented.
func (r *redisRun) noneAuthorizedAgain(before, probes authCounts) []string {
	now := r.authCounts()
	// The probes' own sign-ins are taken off what the servers counted.
	adj := func(m map[string]int, sub map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			out[k] = v - sub[k]
		}
		return out
	}
	grew := AuthorizedAgain(before.as, adj(now.as, probes.as), before.idp, adj(now.idp, probes.idp), before.browsers, now.browsers)
	if len(grew) > 0 {
		return []string{fmt.Sprintf("users had to authorize again: %v", grew)}
	}
	return nil
}

// records counts the proxies' records in Redis by namespace, on the
// primary the Sentinels name once there are Sentinels.
func (r *redisRun) records(ctx context.Context) (map[string]int, error) {
	srv := r.srv
	if r.set != nil {
		p, err := r.set.Primary(ctx)
		if err != nil {
			return nil, err
		}
		srv = p
	}
	out := map[string]int{}
	cursor := "0"
	for {
		reply, err := srv.Do(ctx, "SCAN", cursor, "MATCH", redisPrefix+":*", "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		lines := strings.Split(reply, "\n")
		cursor = lines[0]
		for _, k := range lines[1:] {
			rest := strings.TrimPrefix(k, redisPrefix+":")
			if ns, _, ok := strings.Cut(rest, "#"); ok && !strings.HasPrefix(ns, "!") {
				out[ns]++
			}
		}
		if cursor == "0" {
			return out, nil
		}
	}
}

// nothingLost: every remote token and every MCP client's token that Redis
// held before the phase is still there (the probes may add some).
func (r *redisRun) nothingLost(ctx context.Context, before map[string]int, p *Phase) []string {
	after, err := r.records(ctx)
	if err != nil {
		return []string{"counting the records in Redis after the phase: " + err.Error()}
	}
	var out []string
	for _, ns := range []string{"upstream", "access", "refresh"} {
		if after[ns] < before[ns] {
			out = append(out, fmt.Sprintf("Redis held %d %s records before the phase and %d after: records were lost", before[ns], ns, after[ns]))
		}
	}
	if len(out) == 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("no record lost: Redis holds %d remote tokens, %d MCP client access tokens and %d refresh tokens after the phase (%d, %d and %d before)",
			after["upstream"], after["access"], after["refresh"], before["upstream"], before["access"], before["refresh"]))
	}
	return out
}

// metrics reads both replicas' error answers and stale reads.
func (r *redisRun) metrics() [2]map[string]float64 {
	errs, stale := map[string]float64{}, map[string]float64{}
	for i := range r.reps.Len() {
		scrape := func() (map[string]*dto.MetricFamily, error) { return r.reps.Metrics(i) }
		if e, err := CounterBy(scrape, "mcp_proxy_errors_total", "type"); err == nil {
			for k, v := range e {
				errs[k] += v
			}
		}
		if s, err := CounterBy(scrape, "mcp_proxy_store_stale_reads_total", "namespace"); err == nil {
			for k, v := range s {
				stale[k] += v
			}
		}
	}
	return [2]map[string]float64{errs, stale}
}

func (r *redisRun) metricNotes(before [2]map[string]float64) []string {
	now := r.metrics()
	stale := Delta(before[1], now[1])
	return []string{
		"the replicas' error answers over the phase, by code: " + Counts(Delta(before[0], now[0])),
		fmt.Sprintf("records served from the replicas' memory while Redis could not be reached (mcp_proxy_store_stale_reads_total): %.0f access tokens, %.0f remote tokens",
			stale["access"], stale["upstream"]),
	}
}

// probe is a sign-in or a refresh sent on purpose.
type probe struct {
	what   string
	status int    // the proxy's answer; 0 when none came
	code   string // the error code of the answer
	took   time.Duration
	err    error
}

func (p probe) String() string {
	if p.err == nil {
		return fmt.Sprintf("%s succeeded in %s", p.what, ms(p.took))
	}
	if p.status == 0 {
		return fmt.Sprintf("%s got no answer from the proxy in %s: %.200v", p.what, ms(p.took), p.err)
	}
	return fmt.Sprintf("%s answered %d %s in %s", p.what, p.status, p.code, ms(p.took))
}

// refused: the probe got the documented answer of a store that cannot be
// reached, within probeLimit.
func (p probe) refused(what string) []string {
	switch {
	case p.err == nil:
		return []string{what + " succeeded: it should have needed Redis"}
	case p.status != http.StatusServiceUnavailable || p.code != "storage_unavailable":
		return []string{fmt.Sprintf("%s: %s; want 503 storage_unavailable (docs/troubleshooting.md)", what, p)}
	case p.took > probeLimit:
		return []string{fmt.Sprintf("%s took %s to be refused; want at most %s", what, p.took, probeLimit)}
	}
	return nil
}

// signIn signs probe user n in through the proxy, and returns what the
// authorization servers counted meanwhile.
func (r *redisRun) signIn(ctx context.Context, n int) (probe, authCounts) {
	before := r.authCounts()
	u := r.probes[n]
	name := "load-client-" + strings.TrimPrefix(u.Username, "load-")
	mc := actors.NewMCPClientWithPassword(r.h.NewTransport(), u.Username, u.Password, name,
		clientmeta.MetadataURL(bench.ClientHost, name), clientmeta.RedirectURL(bench.ClientHost, name))
	defer mc.Close()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t0 := time.Now()
	err := mc.Connect(c, endpoint)
	pr := probe{what: "sign-in of " + u.Username, took: time.Since(t0), err: err}
	if pe := mc.PageError; err != nil && pe != nil {
		pr.status, pr.code = pe.Status, pe.Element("code")
	}
	return pr, diffCounts(before, r.authCounts())
}

// signInUntil signs probe user n in until it works or limit passes, and
// returns the last attempt, when it ended (since start) and what the
// authorization servers counted over all attempts.
func (r *redisRun) signInUntil(ctx context.Context, n int, start time.Time, limit time.Duration) (probe, time.Duration, authCounts) {
	var all authCounts
	deadline := time.Now().Add(limit)
	for {
		pr, d := r.signIn(ctx, n)
		all.add(d)
		if pr.err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return pr, time.Since(start), all
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// refreshProbe refreshes the refresh probe's token at the proxy's token
// endpoint, as an MCP client does when its access token expires.
func (r *redisRun) refreshProbe(ctx context.Context) probe {
	u := r.probes[0]
	name := "load-client-" + strings.TrimPrefix(u.Username, "load-")
	pr := probe{what: "refresh of " + u.Username + "'s token"}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.refresh}, "client_id": {clientmeta.MetadataURL(bench.ClientHost, name)}}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodPost, "https://"+bench.ProxyHost+"/.mcp-proxy/token", strings.NewReader(form.Encode()))
	if err != nil {
		pr.err = err
		return pr
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := &http.Client{Transport: r.h.NewTransport()}
	t0 := time.Now()
	resp, err := hc.Do(req)
	pr.took = time.Since(t0)
	if err != nil {
		pr.err = err
		return pr
	}
	defer resp.Body.Close()
	var body struct {
		Error        string `json:"error"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	pr.status, pr.code = resp.StatusCode, body.Error
	if resp.StatusCode != http.StatusOK {
		pr.err = fmt.Errorf("%d %s", resp.StatusCode, body.Error)
		return pr
	}
	if body.RefreshToken != "" {
		r.refresh = body.RefreshToken
	}
	return pr
}
