package bench

import (
	"context"
	"fmt"
	"io"
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
	// Targets are the targets measured (nil: all of Targets).
	Targets  []string
	Warmup   time.Duration
	Duration time.Duration
	// Progress receives a line per measurement.
	Progress io.Writer
}

// Target names.
const (
	Direct  = "direct"
	BareHop = "bare hop"
	Proxy   = "mcp-proxy"
	// ProxyPolicy is mcp-proxy on a route with a 20-rule tool policy
	// (canned upstream only): what an access policy adds.
	ProxyPolicy = "mcp-proxy+policy"
)

// Targets are measured in this order, rotated by one each round.
var Targets = []string{Direct, BareHop, Proxy, ProxyPolicy, ProxyTrace10, ProxyTrace100}

// TargetKeys name the targets on bench's command line (-targets).
var TargetKeys = map[string]string{"direct": Direct, "bare": BareHop, "proxy": Proxy, "policy": ProxyPolicy,
	"trace0.1": ProxyTrace10, "trace1": ProxyTrace100}

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
func proxyTarget(target string) bool { return target != Direct && target != BareHop }

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
	switch {
	case upstream == "sdk" && target == Direct:
		return SDKHost
	case upstream == "sdk" && target == BareHop:
		return BareHost
	case upstream == "sdk":
		return ProxyHost
	case target == Direct:
		return CannedHost
	case target == BareHop:
		return BareCannedHost
	case target == ProxyPolicy:
		return ProxyPolicyHost
	case target == ProxyTrace10:
		return Trace10Host
	case target == ProxyTrace100:
		return Trace100Host
	default:
		return ProxyCannedHost
	}
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
			for i := range Targets {
				target := Targets[(i+round)%len(Targets)]
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
				lr, err := h.Load(ctx, host, token, cell.Upstream, cell.Proto, cell.C, o.Warmup, o.Duration, pids)
				if err != nil {
					return nil, err
				}
				if lr.Requests == 0 {
					return nil, fmt.Errorf("bench: %s %v answered nothing in %.1fs", target, cell, lr.Seconds)
				}
				n := float64(lr.Requests)
				s := Sample{RPS: n / lr.Seconds, HopCPU: lr.CPU["hop"] * 1e6 / n,
					UpstreamCPU: lr.CPU["upstream"] * 1e6 / n, LoadgenCPU: lr.CPU["loadgen"] * 1e6 / n}
				res.Samples[cell][target] = append(res.Samples[cell][target], s)
				if proxyTarget(target) {
					res.ProxyRequests[host] += lr.Requests
				}
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "bench: round %d %-6s %s c=%-2d %-9s %7.0f rps  hop %5.0f us/req  upstream %5.0f us/req  loadgen %5.0f us/req\n",
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

// Row is one line of the table: medians over the rounds.
type Row struct {
	Cell
	DirectRPS                      float64
	BareRPS, BareVsDirect, BareCPU float64
	ProxyRPS, ProxyVsDirect        float64
	ProxyCPU, ProxyVsBareCPU       float64
	// PolicyCPU is mcp-proxy's CPU per request on the route with the
	// policy, PolicyVsProxyCPU its ratio to the route without (0: not
	// measured).
	PolicyCPU, PolicyVsProxyCPU float64
}

// Rows are the table's lines.
func (r *Results) Rows() []Row {
	var rows []Row
	for _, cell := range r.Cells {
		s := r.Samples[cell]
		d, b, p, pp := s[Direct], s[BareHop], s[Proxy], s[ProxyPolicy]
		rows = append(rows, Row{Cell: cell,
			DirectRPS: med(d, rps),
			BareRPS:   med(b, rps), BareVsDirect: ratio(b, d, rps), BareCPU: med(b, hopCPU),
			ProxyRPS: med(p, rps), ProxyVsDirect: ratio(p, d, rps), ProxyCPU: med(p, hopCPU),
			ProxyVsBareCPU: ratio(p, b, hopCPU),
			PolicyCPU:      med(pp, hopCPU), PolicyVsProxyCPU: ratio(pp, p, hopCPU)})
	}
	return rows
}

// Check is one of the performance budget's thresholds (docs/performance.md,
// "Measuring it") with its verdict.
type Check struct {
	What string
	OK   bool
}

// Checks are the budget's thresholds on the rows that were measured:
// mcp-proxy's CPU per request at most 0.8× the bare hop's on the canned
// upstream at 16 and 64 clients; at least 0.85× direct throughput against
// the SDK server at 64 clients; HTTP/2 no costlier than HTTP/1.1 (within
// 10 %, the noise of a shared machine), and no costlier for the proxy than
// for the bare hop.
func (r *Results) Checks() []Check {
	var out []Check
	byCell := map[Cell]Row{}
	for _, row := range r.Rows() {
		byCell[row.Cell] = row
		switch {
		case row.BareCPU == 0 || row.ProxyCPU == 0 || row.DirectRPS == 0:
			// A run of part of the targets (-targets): no budget check.
		case row.Upstream == "canned" && (row.C == 16 || row.C == 64):
			out = append(out, Check{fmt.Sprintf("canned %s c=%d: mcp-proxy CPU %.2fx the bare hop's (budget <= 0.80x)", row.Proto, row.C, row.ProxyVsBareCPU), row.ProxyVsBareCPU <= 0.8})
		case row.Upstream == "sdk" && row.C == 64:
			out = append(out, Check{fmt.Sprintf("sdk %s c=64: mcp-proxy %.2fx direct rps (budget >= 0.85x)", row.Proto, row.ProxyVsDirect), row.ProxyVsDirect >= 0.85})
		}
		if row.PolicyVsProxyCPU > 0 && row.C > 1 {
			out = append(out, Check{fmt.Sprintf("canned %s c=%d: a 20-rule tool policy costs mcp-proxy %.2fx its CPU without one (budget <= 1.10x)", row.Proto, row.C, row.PolicyVsProxyCPU), row.PolicyVsProxyCPU <= 1.1})
		}
	}
	for _, cell := range r.Cells {
		if cell.Proto != "h2" {
			continue
		}
		h1, ok := byCell[Cell{cell.Upstream, "h1", cell.C}]
		if !ok || h1.ProxyCPU == 0 || h1.BareCPU == 0 || cell.C == 1 {
			continue
		}
		h2 := byCell[cell]
		out = append(out, Check{fmt.Sprintf("%s c=%d: mcp-proxy CPU over HTTP/2 %.0f us vs HTTP/1.1 %.0f us (budget: no costlier, 10%% noise)", cell.Upstream, cell.C, h2.ProxyCPU, h1.ProxyCPU), h2.ProxyCPU <= 1.1*h1.ProxyCPU})
		// What Go's HTTP/2 server costs over its HTTP/1.1 server, the bare
		// hop pays too; the proxy must add nothing to it.
		pd, bd := h2.ProxyCPU-h1.ProxyCPU, h2.BareCPU-h1.BareCPU
		out = append(out, Check{fmt.Sprintf("%s c=%d: HTTP/2 over HTTP/1.1 costs mcp-proxy %+.0f us, the bare hop %+.0f us (budget: the proxy adds nothing of its own, 10 us noise)", cell.Upstream, cell.C, pd, bd), pd <= bd+10})
	}
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

// WriteTable prints the table and the checks.
func (r *Results) WriteTable(w io.Writer) {
	o := r.Opts
	fmt.Fprintf(w, "\nbench: medians of %d alternating rounds, %v measured after %v of warm-up per target; HTTPS on the client leg; CPU from /proc per process\n",
		o.Rounds, o.Duration, o.Warmup)
	fmt.Fprintln(w, "bench: rps ÷ direct and CPU ÷ bare hop are medians of each round's ratio (measured next to each other)")
	if r.Opts.measuresAny(Direct, BareHop) {
		r.writeMain(w)
	}
	if r.Opts.measuresAny(ProxyPolicy) {
		r.writePolicy(w)
	}
	r.writeTracing(w)
	for _, c := range append(r.Checks(), r.TraceChecks()...) {
		verdict := "ok  "
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

func (r *Results) writeMain(w io.Writer) {
	head := "| upstream | client leg | c | direct rps | bare hop rps | bare ÷ direct | bare hop CPU µs/req | mcp-proxy rps | mcp-proxy ÷ direct | mcp-proxy CPU µs/req | mcp-proxy CPU ÷ bare hop |"
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, "|"+strings.Repeat("---|", strings.Count(head, "|")-1))
	for _, row := range r.Rows() {
		proto := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2"}[row.Proto]
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %.2f× | %.0f | %.0f | %.2f× | %.0f | %.2f× |\n",
			row.Upstream, proto, row.C, row.DirectRPS, row.BareRPS, row.BareVsDirect, row.BareCPU,
			row.ProxyRPS, row.ProxyVsDirect, row.ProxyCPU, row.ProxyVsBareCPU)
	}
}

func (r *Results) writePolicy(w io.Writer) {
	fmt.Fprintln(w, "\n| upstream | client leg | c | mcp-proxy CPU µs/req | with a 20-rule tool policy | policy ÷ none |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, row := range r.Rows() {
		if row.PolicyCPU > 0 {
			proto := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2"}[row.Proto]
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %.2f× |\n", row.Upstream, proto, row.C, row.ProxyCPU, row.PolicyCPU, row.PolicyVsProxyCPU)
		}
	}
}
