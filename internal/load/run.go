// Package load is `make load`: hundreds of MCP clients, each its own user
// with its own authorization and its own MCP session, call a tool through
// mcp-proxy in a closed loop, on this machine's loopback only. The set is
// internal/bench's harness in its load form (bench.LoadSetup): the mock
// authorization servers in this process, the mock MCP server and
// mcp-proxy (file store) as processes of their own, so that each can be
// restarted for real.
//
// The phases: the warm path for a while, with the proxy's goroutines and
// heap read before and after (a leak fails the run); the upstream
// restarted under load; the remote authorization server slow, then down,
// while short-lived tokens come due for refresh; and the proxy restarted
// onto its file store under load; the configuration and the certificate
// changed and reloaded every two seconds under load. Each reports what the
// clients saw.
package load

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

// Options choose the size and the length of a run.
type Options struct {
	Clients int           // MCP clients (and users) in every phase
	Cohort  int           // users authorized with short-lived tokens for the refresh phase
	Warm    time.Duration // the warm phase
	Restart time.Duration // each restart phase; the restart comes at a quarter of it
	// TTL is the lifetime of the remote tokens of the refresh phase's
	// users.
	TTL time.Duration
	// SlowBy is how long the authorization server takes to answer a token
	// request while it is slow.
	SlowBy time.Duration
	// Parallel is how many users are authorized at a time.
	Parallel int
	Leak     LeakRule
	// ServeWhileValid makes the refresh phase fail when a request fails
	// while the remote token the proxy holds for its user is still valid;
	// off, that count is only reported.
	ServeWhileValid bool
	// Reload is the reload phase, and ReloadEvery how often it changes the
	// configuration and sends SIGHUP (reload.go).
	Reload, ReloadEvery time.Duration
	// Redis runs the Redis phases after the others (redis.go).
	Redis bool
	// RedisOutage is how long redis-server is stopped; RedisPhase is the
	// length of the replica-kill and failover phases, whose event comes at
	// a quarter of it.
	RedisOutage, RedisPhase time.Duration
	Progress                io.Writer
}

// Row is one line of a phase's table.
type Row struct {
	Label string
	Summary
	// Recovery is how long the proxy took to recover after the phase's
	// event, in the row of the window that follows it; zero elsewhere.
	Recovery time.Duration
}

// Phase is one phase's result.
type Phase struct {
	Name     string
	Rows     []Row
	Events   []string // what the script did, and when
	Notes    []string // what was checked besides the rows
	Failures []string // the phase's rules that did not hold
	Tally    *Tally
	// Extended phases' tables also show the failures while a token was
	// valid and the recovery time.
	Extended bool
}

// Report is a whole run.
type Report struct {
	Opts   Options
	Phases []*Phase
	// Before and After are the proxy's figures around the warm phase;
	// Final once every session is closed at the end.
	Before, After, Final Snapshot
}

// Failed lists every failure of every phase.
func (r *Report) Failed() []string {
	var out []string
	for _, p := range r.Phases {
		for _, f := range p.Failures {
			out = append(out, p.Name+": "+f)
		}
	}
	return out
}

func (o Options) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "load: "+format+"\n", args...)
	}
}

// Run runs every phase against h, which must have been started with
// bench.LoadSetup{Users: Users(UserCount(o))}.
func Run(ctx context.Context, h *bench.Harness, o Options) (*Report, error) {
	users := Users(UserCount(o))
	rep := &Report{Opts: o}
	t0 := time.Now()
	clients, err := authorizeAll(ctx, h, users[:o.Clients], 0, o.Parallel)
	if err != nil {
		return nil, fmt.Errorf("authorizing the users: %w", err)
	}
	o.logf("%d users authorized through the proxy, each with its MCP session, in %s", len(clients), time.Since(t0).Round(time.Second))

	warm, err := warmPhase(ctx, h, o, clients, rep)
	if err != nil {
		return nil, err
	}
	rep.Phases = append(rep.Phases, warm)
	rep.Phases = append(rep.Phases, upstreamPhase(ctx, h, o, clients))
	as, cohort, err := refreshPhase(ctx, h, o, clients, users[o.Clients:o.Clients+o.Cohort])
	if err != nil {
		return nil, err
	}
	rep.Phases = append(rep.Phases, as)
	all := append(append([]*client{}, clients...), cohort...)
	rep.Phases = append(rep.Phases, proxyPhase(ctx, h, o, all))
	rep.Phases = append(rep.Phases, reloadPhase(ctx, h, o, all))

	for _, c := range all {
		c.mc.Close()
	}
	if rep.Final, err = Settle(ctx, h.AdminMetrics, time.Second, 10*time.Second); err != nil {
		return nil, err
	}
	if o.Redis {
		probes := users[o.Clients+o.Cohort:]
		if len(probes) < RedisProbeUsers {
			return nil, fmt.Errorf("the Redis phases need %d more users than -clients and -cohort", RedisProbeUsers)
		}
		if err := redisSection(ctx, h, o, users[:o.Clients], probes, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// UserCount is how many users a run with o needs.
func UserCount(o Options) int {
	n := o.Clients + o.Cohort
	if o.Redis {
		n += RedisProbeUsers
	}
	return n
}

// warmPhase measures the warm path: a short warm-up, the proxy's figures
// once settled, the load for o.Warm, the figures again.
func warmPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client, rep *Report) (*Phase, error) {
	p := &Phase{Name: "warm path", Tally: &Tally{}}
	drive(ctx, clients, 5*time.Second, &Tally{}, nil)
	var err error
	if rep.Before, err = Settle(ctx, h.AdminMetrics, time.Second, 10*time.Second); err != nil {
		return nil, err
	}
	cache0, err := CounterBy(h.AdminMetrics, "mcp_proxy_token_cache_requests_total", "result")
	if err != nil {
		return nil, err
	}
	o.logf("warm path: %d clients for %s", len(clients), o.Warm)
	recs, _ := drive(ctx, clients, o.Warm, p.Tally, nil)
	if rep.After, err = Settle(ctx, h.AdminMetrics, time.Second, 10*time.Second); err != nil {
		return nil, err
	}
	cache1, err := CounterBy(h.AdminMetrics, "mcp_proxy_token_cache_requests_total", "result")
	if err != nil {
		return nil, err
	}
	s := Summarize(recs, o.Warm)
	p.Rows = []Row{{Label: fmt.Sprintf("%d clients, %s", len(clients), o.Warm), Summary: s}}
	cache := Delta(cache0, cache1)
	p.Notes = append(p.Notes, fmt.Sprintf("the proxy's token cache over the phase: %.0f hits, %.0f misses, %.0f refreshes",
		cache["hit"], cache["miss"], cache["refresh"]))
	p.Notes = append(p.Notes, fmt.Sprintf("proxy before (settled, clients idle): %d goroutines, heap in use %s, RSS %s",
		rep.Before.Goroutines, MiB(rep.Before.HeapInuse), MiB(rep.Before.RSS)))
	p.Notes = append(p.Notes, fmt.Sprintf("proxy after (settled, clients idle): %d goroutines, heap in use %s, RSS %s",
		rep.After.Goroutines, MiB(rep.After.HeapInuse), MiB(rep.After.RSS)))
	p.Failures = append(p.Failures, WarmRules(s, o.Leak, rep.Before, rep.After)...)
	return p, nil
}

// restartPhase drives clients for o.Restart and restarts host at a quarter
// of it; every client must have had a call answered after the restart by
// the end.
func restartPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client, name, host, what string, grace time.Duration) (*Phase, time.Duration) {
	p := &Phase{Name: name, Tally: &Tally{}}
	var up time.Duration
	errs0, _ := CounterBy(h.AdminMetrics, "mcp_proxy_errors_total", "type")
	if host == bench.ProxyHost {
		errs0 = nil // the new process counts from zero
	}
	o.logf("%s: %d clients for %s, %s restarted at %s", name, len(clients), o.Restart, what, o.Restart/4)
	recs, _ := drive(ctx, clients, o.Restart, p.Tally, func(ctx context.Context, start time.Time) {
		sleep(ctx, o.Restart/4)
		down := time.Since(start)
		if err := h.Restart(host, grace); err != nil {
			p.Failures = append(p.Failures, "the restart failed: "+err.Error())
			return
		}
		up = time.Since(start)
		p.Events = append(p.Events, fmt.Sprintf("%s stopped at %s, a new process listening at %s", what, sec(down), sec(up)))
	})
	s := Summarize(recs, o.Restart)
	p.Rows = []Row{{Label: fmt.Sprintf("%d clients, %s", len(clients), o.Restart), Summary: s}}
	if s.Errors > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("failures from %s to %s; %d reconnections (%d failed)",
			sec(s.FirstError), sec(s.LastError), p.Tally.Reconnects.Load(), p.Tally.ReconnectFailures.Load()))
	}
	if errs1, err := CounterBy(h.AdminMetrics, "mcp_proxy_errors_total", "type"); err == nil {
		p.Notes = append(p.Notes, "the proxy's error answers over the phase, by code: "+Counts(Delta(errs0, errs1)))
	}
	if up > 0 {
		p.Failures = append(p.Failures, RecoveryRules(s, NotAnsweredAfter(recs, indexes(clients), up), len(clients), "the restart")...)
	}
	return p, up
}

func upstreamPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client) *Phase {
	p, _ := restartPhase(ctx, h, o, clients, "upstream restarted", bench.SDKHost, "mockmcp", 2*time.Second)
	return p
}

// proxyPhase restarts mcp-proxy onto its file store under load: besides
// recovering, no user may have had to authorize again (no new sign-in or
// consent at either authorization server, no browser sent anywhere), which
// proves every user's stored tokens were there after the restart.
func proxyPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client) *Phase {
	as0, idp0, auth0 := h.AS().Counters(), h.IdP().Counters(), authorizations(clients)
	p, _ := restartPhase(ctx, h, o, clients, "proxy restarted (file store)", bench.ProxyHost, "mcp-proxy", 15*time.Second)
	as1, idp1, auth1 := h.AS().Counters(), h.IdP().Counters(), authorizations(clients)
	grew := AuthorizedAgain(as0, as1, idp0, idp1, auth0, auth1)
	if len(grew) > 0 {
		p.Failures = append(p.Failures, fmt.Sprintf("users had to authorize again after the restart: %v", grew))
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("no stored token lost: all %d users' calls answered after the restart with no new sign-in, authorization or consent at either authorization server", len(clients)))
	}
	return p
}

// indexes are the clients' indexes.
func indexes(clients []*client) []int {
	out := make([]int, len(clients))
	for i, c := range clients {
		out[i] = c.idx
	}
	return out
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
