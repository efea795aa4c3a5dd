package load

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/faults"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// refreshPhase puts the remote authorization server in trouble while
// tokens come due. A cohort of users is authorized with remote tokens that
// live o.TTL; the proxy refreshes a token a quarter of its life before it
// expires. Then, with every client calling:
//
//   - slow, for one TTL: every token request waits o.SlowBy, so the
//     cohort's first refresh is slow;
//   - down, for a TTL and 4 s: every token request's connection is dropped,
//     so the cohort's second refresh fails, and their tokens expire;
//   - back, for 10 s: the rules are cleared.
//
// The other clients' tokens live an hour: the trouble must not reach
// them, and a failure of theirs fails the phase. A failure of a request sent while its user's remote token was
// still valid (the latest one the authorization server issued for the user
// before the request, by its own record, not within half a second of its
// expiry) is counted; with o.ServeWhileValid it fails the phase. Every
// client must have recovered by the end.
func refreshPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client, cohortUsers []mockas.User) (*Phase, []*client, error) {
	p := &Phase{Name: "authorization server slow, then down, during refreshes", Tally: &Tally{}}
	as := h.AS()
	saved := as.Settings()
	short := saved
	short.AccessTokenTTL = o.TTL
	shortFrom := time.Now()
	if err := as.SetSettings(short); err != nil {
		return nil, nil, err
	}
	defer as.SetSettings(saved)
	cohort, err := authorizeAll(ctx, h, cohortUsers, len(clients), o.Parallel)
	if err != nil {
		return nil, nil, fmt.Errorf("authorizing the refresh cohort: %w", err)
	}
	slowEnd, downEnd := o.TTL, 2*o.TTL+4*time.Second
	// Back for 10 s: an expired token's waits stop growing at 5 s.
	total := downEnd + 10*time.Second
	o.logf("refresh: %d clients (%d with %s remote tokens) for %s: token requests slow by %s, then dropped from %s, back at %s",
		len(clients)+len(cohort), len(cohort), o.TTL, total, o.SlowBy, sec(slowEnd), sec(downEnd))
	errs0, err := CounterBy(h.AdminMetrics, "mcp_proxy_errors_total", "type")
	if err != nil {
		return nil, nil, err
	}
	refreshes0, err := CounterBy(h.AdminMetrics, "mcp_proxy_token_refreshes_total", "result")
	if err != nil {
		return nil, nil, err
	}
	all := append(append([]*client{}, clients...), cohort...)
	var slowTo, downTo time.Duration
	recs, start := drive(ctx, all, total, p.Tally, func(ctx context.Context, start time.Time) {
		slowTo, downTo = troubleSchedule(ctx, as.Faults(), o.SlowBy, slowEnd, downEnd, start, p)
	})
	refreshes1, err := CounterBy(h.AdminMetrics, "mcp_proxy_token_refreshes_total", "result")
	if err != nil {
		return nil, nil, err
	}
	refreshes := Delta(refreshes0, refreshes1)
	errs1, err := CounterBy(h.AdminMetrics, "mcp_proxy_errors_total", "type")
	if err != nil {
		return nil, nil, err
	}
	p.Notes = append(p.Notes, "the proxy's error answers over the phase, by code: "+Counts(Delta(errs0, errs1)))
	inCohort := map[int]bool{}
	for _, c := range cohort {
		inCohort[c.idx] = true
	}
	issues := issuedTokens(as.Recorder().Events(), all, saved.AccessTokenTTL, o, shortFrom, start, slowTo)
	MarkValid(recs, start, issues, 500*time.Millisecond)
	p.Rows = append(p.Rows, windowRows(recs, inCohort, o.TTL, slowTo, downTo, total)...)
	var longLived []Record
	for _, r := range recs {
		if !inCohort[r.Client] {
			longLived = append(longLived, r)
		}
	}
	s := Summarize(recs, total)
	failures, note := RefreshRules(Summarize(longLived, total), s, o.ServeWhileValid)
	p.Failures = append(p.Failures, failures...)
	p.Notes = append(p.Notes, fmt.Sprintf("the proxy's refreshes over the phase: %.0f succeeded, %.0f failed, %.0f refused; %d reconnections (%d failed)",
		refreshes["success"], refreshes["failed"], refreshes["refused"], p.Tally.Reconnects.Load(), p.Tally.ReconnectFailures.Load()), note)
	p.Failures = append(p.Failures, RecoveryRules(s, NotAnsweredAfter(recs, indexes(all), downTo), len(all), "the server came back")...)
	return p, cohort, nil
}

// troubleSchedule makes the authorization server slow (every token request
// waits slowBy) until slowEnd, then drops every token request's connection
// until downEnd, then clears the rules, noting each change in p. It returns
// when the slow and the down windows really ended, which on a busy machine
// can be later than planned.
func troubleSchedule(ctx context.Context, inj *faults.Injector, slowBy, slowEnd, downEnd time.Duration, start time.Time, p *Phase) (slowTo, downTo time.Duration) {
	slowTo, downTo = slowEnd, downEnd
	defer inj.Clear()
	if err := inj.Add(faults.Rule{Path: "/token", Delay: slowBy.String()}); err != nil {
		p.Failures = append(p.Failures, err.Error())
		return
	}
	p.Events = append(p.Events, fmt.Sprintf("0.0s: token requests slow by %s", slowBy))
	sleep(ctx, slowEnd)
	inj.Clear()
	if err := inj.Add(faults.Rule{Path: "/token", Drop: true}); err != nil {
		p.Failures = append(p.Failures, err.Error())
		return
	}
	slowTo = time.Since(start)
	p.Events = append(p.Events, fmt.Sprintf("%s: token requests dropped (the server is down)", sec(slowTo)))
	sleep(ctx, downEnd-time.Since(start))
	inj.Clear()
	downTo = time.Since(start)
	p.Events = append(p.Events, fmt.Sprintf("%s: the server answers again", sec(downTo)))
	return
}

// issuedTokens reads, from the authorization server's record of every
// token it issued (with the subject, and when), each client's tokens with
// the lifetime set then: longTTL before shortFrom, o.TTL after.
func issuedTokens(events []control.Event, all []*client, longTTL time.Duration, o Options, shortFrom, start time.Time, slowTo time.Duration) map[int][]Issue {
	idx := map[string]int{}
	for _, c := range all {
		idx[c.user] = c.idx
	}
	issues := map[int][]Issue{}
	for _, ev := range events {
		i, ok := idx[ev.Detail["sub"]]
		if ev.Kind != "token" || ev.Status != http.StatusOK || !ok {
			continue
		}
		ttl := longTTL
		if ev.Time.After(shortFrom) {
			ttl = o.TTL
		}
		// The proxy counts a token's life from when it asked (docs/advanced.md),
		// which for a token the slow server issued was SlowBy earlier.
		at := ev.Time
		if !at.Before(start) && at.Before(start.Add(slowTo+o.SlowBy)) {
			at = at.Add(-o.SlowBy)
		}
		issues[i] = append(issues[i], Issue{At: at, TTL: ttl})
	}
	return issues
}

// windowRows are the phase's table: for each window (slow, down, back),
// the clients with long-lived tokens and those of the cohort apart.
func windowRows(recs []Record, inCohort map[int]bool, ttl, slowTo, downTo, total time.Duration) []Row {
	windows := []struct {
		name     string
		from, to time.Duration
	}{{"slow", 0, slowTo}, {"down", slowTo, downTo}, {"back", downTo, total}}
	var rows []Row
	for _, w := range windows {
		for _, g := range []struct {
			name   string
			cohort bool
		}{{"1 h tokens", false}, {ttl.String() + " tokens", true}} {
			var sel []Record
			for _, r := range recs {
				if r.At >= w.from && r.At < w.to && inCohort[r.Client] == g.cohort {
					sel = append(sel, r)
				}
			}
			rows = append(rows, Row{Label: w.name + ", " + g.name, Summary: Summarize(sel, w.to-w.from)})
		}
	}
	return rows
}
