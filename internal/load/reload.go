package load

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

// reloadPhase changes the proxy's configuration and certificate every
// o.ReloadEvery for o.Reload under load, alternating between the one route
// the clients use and that route plus another, and sends SIGHUP after each
// change, as an operator (and cert-manager) would. Not one request may
// fail; the proxy must count every reload as a success, and serve each new
// configuration and certificate within o.ReloadEvery.
func reloadPhase(ctx context.Context, h *bench.Harness, o Options, clients []*client) *Phase {
	p := &Phase{Name: "configuration reloaded", Tally: &Tally{}}
	r0, _ := CounterBy(h.AdminMetrics, "mcp_proxy_config_reloads_total", "result")
	o.logf("reload: %d clients for %s, the configuration and the certificate changed and SIGHUP sent every %s", len(clients), o.Reload, o.ReloadEvery)
	var (
		mu      sync.Mutex
		sent    int
		applied []time.Duration
		missed  []string
	)
	recs, _ := drive(ctx, clients, o.Reload, p.Tally, func(ctx context.Context, start time.Time) {
		for gen := 1; time.Duration(gen+1)*o.ReloadEvery <= o.Reload; gen++ {
			sleep(ctx, time.Until(start.Add(time.Duration(gen)*o.ReloadEvery)))
			if ctx.Err() != nil {
				return
			}
			extra := gen%2 == 1
			serial, err := h.ReloadProxy(gen, extra)
			mu.Lock()
			sent++
			mu.Unlock()
			if err == nil {
				var took time.Duration
				if took, err = h.WaitReloadApplied(ctx, extra, serial, o.ReloadEvery); err == nil {
					mu.Lock()
					applied = append(applied, took)
					mu.Unlock()
					continue
				}
			}
			mu.Lock()
			missed = append(missed, fmt.Sprintf("reload %d at %s: %v", gen, sec(time.Since(start)), err))
			mu.Unlock()
		}
	})
	r1, err := CounterBy(h.AdminMetrics, "mcp_proxy_config_reloads_total", "result")
	if err != nil {
		p.Failures = append(p.Failures, "reading the proxy's metrics: "+err.Error())
	}
	d := Delta(r0, r1)
	s := Summarize(recs, o.Reload)
	p.Rows = []Row{{Label: fmt.Sprintf("%d clients, %s, %d reloads", len(clients), o.Reload, sent), Summary: s}}
	p.Events = append(p.Events, fmt.Sprintf("every %s from %s: a new certificate (its directory swapped by one rename of a link) and a configuration with one route more, or one fewer, then SIGHUP", o.ReloadEvery, o.ReloadEvery))
	p.Notes = append(p.Notes, fmt.Sprintf("the proxy counted %.0f reloads as success, %.0f as failure (mcp_proxy_config_reloads_total); %d sent", d["success"], d["failure"], sent))
	if len(applied) > 0 {
		slices.Sort(applied)
		p.Notes = append(p.Notes, fmt.Sprintf("each reload served (new certificate on a new connection, the route there or gone) within %s of SIGHUP; median %s",
			applied[len(applied)-1].Round(time.Millisecond), applied[len(applied)/2].Round(time.Millisecond)))
	}
	p.Failures = append(p.Failures, ReloadRules(s, sent, d["success"], d["failure"], missed)...)
	return p
}
