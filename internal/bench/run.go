package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options choose what one bench run measures.
type Options struct {
	Rounds      int
	Concurrency []int
	Protos      []string // h1, h2: the client leg
	Upstreams   []string // sdk, canned
	// Targets are the targets measured (nil: all of Harness.Targets).
	Targets  []string
	Warmup   time.Duration
	Duration time.Duration
	// Progress receives a line per measurement.
	Progress io.Writer
	// CPUWindows, with Harness.CPUWindows, writes a CPU profile of each
	// Go hop (the bare and pooled hops, mcp-proxy, Caddy) over each
	// measured window to the profile directory,
	// cpu-UPSTREAM-PROTO-cC-TARGET-rROUND.pprof, and a line per window to
	// its windows.tsv (the file, the requests served in the window, its
	// seconds, the hop's CPU µs per request from /proc), so that a
	// profile's samples can be divided by the requests they served.
	// Duration must be whole seconds: the profile endpoint takes seconds.
	CPUWindows bool
}

// Target names.
const (
	Direct  = "direct"
	BareHop = "bare hop"
	Proxy   = "mcp-proxy"
	// PooledH1Hop is the pooled hop forwarding to the upstream over
	// HTTP/1.1 only, as mcp-proxy forwards requests; PooledHop speaks
	// HTTP/2 to it, and pays for a goroutine per request there.
	PooledH1Hop = "pooled hop, HTTP/1.1 upstream"
	// ProxyPolicy is mcp-proxy on a route with a 20-rule tool policy
	// (canned upstream only): what an access policy adds.
	ProxyPolicy = "mcp-proxy+policy"
)

// Targets are measured in this order, rotated by one each round, with
// the peers that run (Harness.Peers) and the traced proxies while they
// run (Harness.Traced, until a Run has measured them) after them.
var Targets = []string{Direct, BareHop, PooledHop, PooledH1Hop, Proxy, ProxyPolicy}

// PooledTargets are the pooled hop's configurations; the budget compares
// mcp-proxy with the cheaper of those measured in each cell (bestPooled).
var PooledTargets = []string{PooledHop, PooledH1Hop}

// Targets are the bench's Targets, the peers that run and the traced
// proxies while they run.
func (h *Harness) Targets() []string {
	ts := append(slices.Clone(Targets), h.Peers...)
	if len(h.traced) > 0 {
		ts = append(ts, ProxyTrace10, ProxyTrace100)
	}
	return ts
}

// routeHosts are each target's hosts: to the SDK server, the canned
// answer and the streams upstream ("": none).
var routeHosts = map[string][3]string{
	Direct:        upstreamHosts,
	BareHop:       {BareHost, BareCannedHost, BareStreamsHost},
	PooledHop:     {PooledHost, PooledCannedHost, PooledStreamsHost},
	PooledH1Hop:   {PooledH1Host, PooledH1CannedHost, PooledH1StreamsHost},
	Proxy:         {ProxyHost, ProxyCannedHost, ProxyStreamsHost},
	ProxyPolicy:   {"", ProxyPolicyHost, ""},
	ProxyTrace10:  {"", Trace10Host, ""},
	ProxyTrace100: {"", Trace100Host, ""},
	Caddy:         peerHosts[Caddy],
	Nginx:         peerHosts[Nginx],
}

// TargetKeys name the targets on bench's command line (-targets).
var TargetKeys = map[string]string{"direct": Direct, "bare": BareHop, "pooled": PooledHop, "pooledh1": PooledH1Hop, "proxy": Proxy, "policy": ProxyPolicy,
	"caddy": Caddy, "nginx": Nginx, "trace0.1": ProxyTrace10, "trace1": ProxyTrace100}

// measures reports whether target is measured against upstream in a run
// of o: the policy and tracing targets have routes to the canned answer
// only.
func (o Options) measures(upstream, target string) bool {
	if o.Targets != nil && !slices.Contains(o.Targets, target) {
		return false
	}
	return upstream == "canned" || (target != ProxyPolicy && target != ProxyTrace10 && target != ProxyTrace100)
}

// proxyTarget reports whether target is one of mcp-proxy's routes.
func proxyTarget(target string) bool {
	return target == Proxy || target == ProxyPolicy || target == ProxyTrace10 || target == ProxyTrace100
}

// Cell is one (upstream, protocol, concurrency) of the table.
type Cell struct {
	Upstream, Proto string
	C               int
}

// Sample is one target's measurement in one round.
type Sample struct {
	RPS float64
	// HopCPU is the CPU per request of the process between the load
	// generator and the upstream (none for direct), in microseconds.
	HopCPU      float64
	UpstreamCPU float64
	LoadgenCPU  float64
}

// Results hold every sample: Samples[cell][target][round].
type Results struct {
	Opts    Options
	Cells   []Cell
	Samples map[Cell]map[string][]Sample
	// ProxyRequests counts the requests mcp-proxy answered in the
	// measured windows, by route host; CacheHits the token cache hits
	// over the whole run (warm-ups too), CacheOther its misses and
	// refreshes.
	ProxyRequests map[string]int64
	CacheHits     map[string]float64
	CacheOther    map[string]float64
	// Traces are what the traced proxies' receivers got, by route host.
	Traces map[string]TraceCount
}

func (h *Harness) targetHost(upstream, target string) string {
	i := map[string]int{"sdk": 0, "canned": 1, "streams": 2}[upstream]
	return routeHosts[target][i]
}

// Run measures every cell for every target, Rounds times.
func (h *Harness) Run(ctx context.Context, o Options) (*Results, error) {
	res := &Results{Opts: o, Samples: map[Cell]map[string][]Sample{}, ProxyRequests: map[string]int64{},
		CacheHits: map[string]float64{}, CacheOther: map[string]float64{}}
	hosts := h.RouteHosts()
	for _, u := range o.Upstreams {
		for _, p := range o.Protos {
			for _, c := range o.Concurrency {
				cell := Cell{u, p, c}
				res.Cells = append(res.Cells, cell)
				res.Samples[cell] = map[string][]Sample{}
			}
		}
	}
	before := map[string]map[string]float64{}
	for _, host := range hosts {
		m, err := h.TokenCache(host)
		if err != nil {
			return nil, err
		}
		before[host] = m
	}
	h.resetTracing()
	for round := range o.Rounds {
		for _, cell := range res.Cells {
			targets := h.Targets()
			for i := range targets {
				target := targets[(i+round)%len(targets)]
				if !o.measures(cell.Upstream, target) {
					continue
				}
				host := h.targetHost(cell.Upstream, target)
				token := h.DirectToken
				if proxyTarget(target) {
					token = h.ProxyTokens[host]
				}
				upHost := h.targetHost(cell.Upstream, Direct)
				pids := map[string]int{"upstream": h.PID(upHost)}
				if target != Direct {
					pids["hop"] = h.PID(host)
				}
				prof := h.windowProfile(o, cell, target, round)
				lr, err := h.Load(ctx, host, token, cell.Upstream, cell.Proto, cell.C, o.Warmup, o.Duration, pids, prof)
				if err != nil {
					return nil, err
				}
				if lr.Requests == 0 {
					return nil, fmt.Errorf("bench: %s %v answered nothing in %.1fs", target, cell, lr.Seconds)
				}
				n := float64(lr.Requests)
				s := Sample{RPS: n / lr.Seconds, HopCPU: lr.CPU["hop"] * 1e6 / n,
					UpstreamCPU: lr.CPU["upstream"] * 1e6 / n, LoadgenCPU: lr.CPU["loadgen"] * 1e6 / n}
				if prof != nil {
					if err := h.logWindow(prof, lr, s); err != nil {
						return nil, err
					}
				}
				res.Samples[cell][target] = append(res.Samples[cell][target], s)
				if proxyTarget(target) {
					res.ProxyRequests[host] += lr.Requests
				}
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "bench: round %d %-6s %s c=%-2d %-29s %7.0f rps  hop %5.0f us/req  upstream %5.0f us/req  loadgen %5.0f us/req\n",
						round+1, cell.Upstream, cell.Proto, cell.C, target, s.RPS, s.HopCPU, s.UpstreamCPU, s.LoadgenCPU)
				}
			}
		}
	}
	for _, host := range hosts {
		m, err := h.TokenCache(host)
		if err != nil {
			return nil, err
		}
		res.CacheHits[host] = m["hit"] - before[host]["hit"]
		res.CacheOther[host] = m["miss"] + m["refresh"] - before[host]["miss"] - before[host]["refresh"]
	}
	var err error
	if res.Traces, err = h.finishTracing(res.CacheHits); err != nil {
		return nil, err
	}
	return res, nil
}

// windowKeys are the Go hops whose CPU can be profiled per window: the
// process behind each target, by its key in Harness.debugAddrs.
var windowKeys = map[string]string{BareHop: BareHost, PooledHop: PooledHost, PooledH1Hop: PooledH1Host, Proxy: ProxyHost, ProxyPolicy: ProxyHost, Caddy: CaddyHost}

// windowProfile is the profile to take of target's hop in this window
// (nil: none).
func (h *Harness) windowProfile(o Options, cell Cell, target string, round int) *WindowProfile {
	addr := h.debugAddrs[windowKeys[target]]
	if !o.CPUWindows || !h.CPUWindows || h.ProfileDir == "" || addr == "" {
		return nil
	}
	name := fmt.Sprintf("cpu-%s-%s-c%d-%s-r%d.pprof", cell.Upstream, cell.Proto, cell.C, fileTarget(target), round+1)
	secs := int(o.Duration.Round(time.Second) / time.Second)
	return &WindowProfile{URL: fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(secs, 1)),
		File: filepath.Join(h.ProfileDir, name)}
}

// fileTarget is target as part of a file name: its letters, digits and
// ".+-" only ("pooled hop, HTTP/1.1 upstream": pooledhopHTTP1.1upstream).
func fileTarget(target string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".+-", r) {
			return r
		}
		return -1
	}, target)
}

// logWindow appends the window of prof to windows.tsv.
func (h *Harness) logWindow(prof *WindowProfile, lr *LoadResult, s Sample) error {
	f, err := os.OpenFile(filepath.Join(h.ProfileDir, "windows.tsv"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\t%d\t%.3f\t%.1f\n", filepath.Base(prof.File), lr.Requests, lr.Seconds, s.HopCPU)
	return errors.Join(err, f.Close())
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is the median over rounds of a[i]/b[i]: each round's ratio is of
// two measurements taken next to each other.
func ratio(a, b []Sample, f func(Sample) float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if f(b[i]) > 0 {
			rs = append(rs, f(a[i])/f(b[i]))
		}
	}
	return median(rs)
}

func med(s []Sample, f func(Sample) float64) float64 {
	xs := make([]float64, len(s))
	for i := range s {
		xs[i] = f(s[i])
	}
	return median(xs)
}

func rps(s Sample) float64    { return s.RPS }
func hopCPU(s Sample) float64 { return s.HopCPU }

// Row is one line of the table: medians over the rounds, by target.
type Row struct {
	Cell
	RPS, VsDirect, CPU map[string]float64
	// Pooled is the cell's cheaper pooled target (bestPooled), "" when
	// none was measured; VsPooled is each hop's CPU per request over
	// Pooled's, the median of each round's ratio.
	Pooled   string
	VsPooled map[string]float64
	// PolicyVsProxy is mcp-proxy's CPU on the route with the policy over
	// the route without (0: not measured).
	PolicyVsProxy float64
}

// Rows are the table's lines.
func (r *Results) Rows() []Row {
	var rows []Row
	for _, cell := range r.Cells {
		s := r.Samples[cell]
		row := Row{Cell: cell, RPS: map[string]float64{}, VsDirect: map[string]float64{}, CPU: map[string]float64{}, VsPooled: map[string]float64{},
			Pooled: bestPooled(s), PolicyVsProxy: ratio(s[ProxyPolicy], s[Proxy], hopCPU)}
		for target, xs := range s {
			row.RPS[target], row.CPU[target] = med(xs, rps), med(xs, hopCPU)
			row.VsDirect[target] = ratio(xs, s[Direct], rps)
			row.VsPooled[target] = ratio(xs, s[row.Pooled], hopCPU)
		}
		rows = append(rows, row)
	}
	return rows
}

// bestPooled is the pooled target of PooledTargets with the least median
// CPU per request among those measured in a cell's samples (the first of
// them on a tie), "" when none was: the budget is measured against the
// pooled hop's best configuration in the run, never a needlessly
// expensive one.
func bestPooled(samples map[string][]Sample) string {
	best, cpu := "", 0.0
	for _, t := range PooledTargets {
		xs, ok := samples[t]
		if !ok || len(xs) == 0 {
			continue
		}
		if c := med(xs, hopCPU); best == "" || c < cpu {
			best, cpu = t, c
		}
	}
	return best
}

// pooledName names the pooled target a check compared with, and why that
// one: the cheaper of those measured, or the only one.
func pooledName(row Row) string {
	n := 0
	for _, t := range PooledTargets {
		if row.measured(t) {
			n++
		}
	}
	if n > 1 {
		return fmt.Sprintf("%q, the cheaper pooled target", row.Pooled)
	}
	return fmt.Sprintf("%q, the only pooled target measured", row.Pooled)
}

// Check is one of the performance budget's thresholds (docs/performance.md,
// "Measuring it") with its verdict.
type Check struct {
	What string
	OK   bool
}

// Checks are the budget's thresholds on the rows that were measured, on
// the canned upstream (the hop alone) at 16 and 64 clients: mcp-proxy's
// CPU per request at most 1.1× the pooled hop's and below Caddy's (when
// Caddy ran), on each client leg; what HTTP/2 costs over HTTP/1.1 no more
// for the proxy than for the pooled hop (10 µs of noise), the pooled hop
// in each cell being the cheaper of its configurations measured
// (Row.Pooled); a 20-rule tool policy at most 1.1× the proxy's CPU without
// one; the warm path taken.
func (r *Results) Checks() []Check {
	rows := r.Rows()
	var out []Check
	for _, row := range rows {
		out = append(out, rowChecks(row)...)
	}
	out = append(out, h2Checks(rows)...)
	for _, host := range append(append([]string(nil), ProxyHosts...), TraceHosts...) {
		n, ok := r.ProxyRequests[host]
		if !ok {
			continue // not measured in this run
		}
		out = append(out, Check{fmt.Sprintf("%s: %d measured requests, %.0f token cache hits, %.0f misses or refreshes (the warm path ran)", host, n, r.CacheHits[host], r.CacheOther[host]),
			n > 0 && r.CacheHits[host] >= float64(n) && r.CacheOther[host] == 0})
	}
	return out
}

// measured reports whether each of targets was measured in row's cell:
// a run of part of the targets (-targets) has no budget check that would
// compare with one it left out.
func (row Row) measured(targets ...string) bool {
	for _, t := range targets {
		if _, ok := row.CPU[t]; !ok {
			return false
		}
	}
	return true
}

// rowChecks are the checks of one canned row at 16 clients or more.
func rowChecks(row Row) []Check {
	if row.Upstream != "canned" || row.C < 16 || !row.measured(Proxy) {
		return nil
	}
	var out []Check
	leg := legName[row.Proto]
	if row.Pooled != "" {
		out = append(out, Check{fmt.Sprintf("canned %s c=%d: mcp-proxy CPU %.2fx the pooled hop's (budget <= 1.10x; against %s)", leg, row.C, row.VsPooled[Proxy], pooledName(row)),
			row.VsPooled[Proxy] <= 1.1})
	}
	if row.measured(Caddy) {
		out = append(out, Check{fmt.Sprintf("canned %s c=%d: mcp-proxy CPU %.0f us, Caddy's %.0f us (budget: below Caddy's)", leg, row.C, row.CPU[Proxy], row.CPU[Caddy]), row.CPU[Proxy] < row.CPU[Caddy]})
	}
	if row.PolicyVsProxy > 0 {
		out = append(out, Check{fmt.Sprintf("canned %s c=%d: a 20-rule tool policy costs mcp-proxy %.2fx its CPU without one (budget <= 1.10x)", leg, row.C, row.PolicyVsProxy), row.PolicyVsProxy <= 1.1})
	}
	return out
}

// h2Checks compare each canned HTTP/2 row at 16 clients or more with its
// HTTP/1.1 row.
func h2Checks(rows []Row) []Check {
	byCell := map[Cell]Row{}
	for _, row := range rows {
		byCell[row.Cell] = row
	}
	var out []Check
	for _, h2 := range rows {
		h1, ok := byCell[Cell{h2.Upstream, "h1", h2.C}]
		if h2.Proto != "h2" || h2.Upstream != "canned" || h2.C < 16 || !ok ||
			!h1.measured(Proxy) || !h2.measured(Proxy) || h1.Pooled == "" || h2.Pooled == "" {
			continue
		}
		// What Go's HTTP/2 server costs over its HTTP/1.1 server, the pooled
		// hop pays too; the proxy must add nothing to it. The pooled hop is
		// each leg's cheaper configuration, so the two may differ.
		pd, bd := h2.CPU[Proxy]-h1.CPU[Proxy], h2.CPU[h2.Pooled]-h1.CPU[h1.Pooled]
		against := "against " + pooledName(h1) + " on both legs"
		if h1.Pooled != h2.Pooled {
			against = fmt.Sprintf("against %s over HTTP/1.1, %s over HTTP/2", pooledName(h1), pooledName(h2))
		}
		out = append(out, Check{fmt.Sprintf("canned c=%d: HTTP/2 over HTTP/1.1 costs mcp-proxy %+.0f us, the pooled hop %+.0f us (budget: no more, 10 us noise; %s)", h2.C, pd, bd, against),
			pd <= bd+10})
	}
	return out
}

// WriteTable prints the tables and the checks.
func (r *Results) WriteTable(w io.Writer, targets []string) {
	o := r.Opts
	fmt.Fprintf(w, "\nbench: medians of %d alternating rounds, %v measured after %v of warm-up per target; HTTPS on the client leg; CPU from /proc per process (group)\n",
		o.Rounds, o.Duration, o.Warmup)
	fmt.Fprintln(w, "bench: ratios are medians of each round's ratio (measured next to each other)")
	hops := slices.DeleteFunc(slices.Clone(targets), func(t string) bool {
		return t == Direct || t == ProxyPolicy || t == ProxyTrace10 || t == ProxyTrace100 || !o.measuresAny(t)
	})
	if o.measuresAny(PooledTargets...) && len(hops) > 0 {
		writeWide(w, r.Rows(), "CPU µs per request", hops, func(row Row, t string) string { return fmt.Sprintf("%.0f", row.CPU[t]) },
			"mcp-proxy ÷ the cheaper pooled hop", func(row Row) string { return fmt.Sprintf("%.2f× (%s)", row.VsPooled[Proxy], row.Pooled) })
	}
	if o.measuresAny(Direct) && len(hops) > 0 {
		writeWide(w, r.Rows(), "rps ÷ direct", hops, func(row Row, t string) string { return fmt.Sprintf("%.2f×", row.VsDirect[t]) },
			"direct rps", func(row Row) string { return fmt.Sprintf("%.0f", row.RPS[Direct]) })
	}
	if o.measuresAny(ProxyPolicy) && slices.Contains(o.Upstreams, "canned") {
		r.writePolicy(w)
	}
	r.writeTracing(w)
	for _, c := range append(r.Checks(), r.TraceChecks()...) {
		verdict := "PASS"
		if !c.OK {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "bench: %s %s\n", verdict, c.What)
	}
}

// measuresAny reports whether a run of o measures one of targets.
func (o Options) measuresAny(targets ...string) bool {
	for _, t := range targets {
		if o.Targets == nil || slices.Contains(o.Targets, t) {
			return true
		}
	}
	return false
}

func (r *Results) writePolicy(w io.Writer) {
	fmt.Fprintln(w, "\n| upstream | client leg | c | mcp-proxy CPU µs/req | with a 20-rule tool policy | policy ÷ none |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, row := range r.Rows() {
		if row.PolicyVsProxy > 0 {
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %.2f× |\n", row.Upstream, legName[row.Proto], row.C, row.CPU[Proxy], row.CPU[ProxyPolicy], row.PolicyVsProxy)
		}
	}
}

// writeWide prints one table with a column per hop and a last column.
func writeWide(w io.Writer, rows []Row, what string, hops []string, cell func(Row, string) string, last string, lastCell func(Row) string) {
	head := "| upstream | client leg | c | " + strings.Join(hops, " | ") + " | " + last + " |"
	fmt.Fprintf(w, "\n%s:\n\n%s\n|%s\n", what, head, strings.Repeat("---|", strings.Count(head, "|")-1))
	for _, row := range rows {
		var cs []string
		for _, t := range hops {
			cs = append(cs, cell(row, t))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s |\n", row.Upstream, legName[row.Proto], row.C, strings.Join(cs, " | "), lastCell(row))
	}
}
