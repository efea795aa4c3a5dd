package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// What tracing costs (docs/performance.md, "What tracing costs"): the
// same route to the canned answer, served by mcp-proxy processes of their
// own whose tracing block sends spans over OTLP/HTTP to a receiver in
// this process, one sampling ratio each. Tracing is a setting of the
// process (a reload cannot change it), hence a process per ratio; the
// route without tracing is ProxyCannedHost's.
const (
	ProxyTrace10  = "mcp-proxy+trace 0.1"
	ProxyTrace100 = "mcp-proxy+trace 1.0"

	Trace10Host  = "trace10-canned-mcp.example.com"
	Trace100Host = "trace100-canned-mcp.example.com"
)

// TraceHosts are the traced proxies' route hosts.
var TraceHosts = []string{Trace10Host, Trace100Host}

// tracedProxy is one traced mcp-proxy and the receiver of its spans.
type tracedProxy struct {
	host, ratio string
	admin       string
	receiver    *traceReceiver
}

// traceRatio is the sampling_ratio of each traced proxy.
var traceRatio = map[string]string{Trace10Host: "0.1", Trace100Host: "1.0"}

// startTracedProxies starts a traced mcp-proxy per TraceHosts, each with
// its receiver on a 127.0.0.1 port (plain HTTP, which the proxy accepts
// to loopback only), and registers its host like the other routes'.
func (h *Harness) startTracedProxies() error {
	for _, host := range TraceHosts {
		t := &tracedProxy{host: host, ratio: traceRatio[host], receiver: &traceReceiver{}}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: t.receiver, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		h.inproc = append(h.inproc, srv)
		leaf, err := h.ca.Issue(host)
		if err != nil {
			return err
		}
		if err := leaf.WriteFiles(h.path(host+".crt"), h.path(host+".key")); err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if t.admin, err = freeAddr(); err != nil {
			return err
		}
		config := proxyConfigNamed(host, t.admin, "type: memory", [2]string{host, CannedHost}) +
			"tracing:\n  endpoint: http://" + ln.Addr().String() + "\n  sampling_ratio: " + t.ratio + "\n"
		if err := os.WriteFile(h.path(host+".yaml"), []byte(config), 0o600); err != nil {
			return err
		}
		if err := h.exec(host, "mcp-proxy", h.proxyArgs(host+".yaml", addr)...); err != nil {
			return err
		}
		if err := waitListening(addr, h.procs[host], h.done[h.procs[host]]); err != nil {
			return err
		}
		h.addrs[host] = addr
		h.hosts.Set(host, 443, netip.MustParseAddrPort(addr))
		h.traced = append(h.traced, t)
	}
	return nil
}

// RouteHosts are the route hosts of every mcp-proxy the harness runs.
func (h *Harness) RouteHosts() []string {
	hosts := allProxyHosts()
	for _, t := range h.traced {
		hosts = append(hosts, t.host)
	}
	return hosts
}

// adminOf is the admin listener of the mcp-proxy serving host.
func (h *Harness) adminOf(host string) string {
	for _, t := range h.traced {
		if t.host == host {
			return t.admin
		}
	}
	return h.adminAddr
}

// TraceCount is what one traced proxy's receiver got over a run.
type TraceCount struct {
	Ratio string
	// Requests are the requests the proxy answered from its token cache
	// (warm-ups included); ServerSpans the request spans that reached the
	// receiver, Spans all spans, Exports the OTLP requests.
	Requests                    float64
	ServerSpans, Spans, Exports int64
}

// finishTracing stops the traced proxies gracefully, so that each sends
// the spans its batch processor still holds, and reads what their
// receivers got since resetTracing; requests are each host's token cache
// hits over the same time. Only the first Run measures them.
func (h *Harness) finishTracing(requests map[string]float64) (map[string]TraceCount, error) {
	out := map[string]TraceCount{}
	for _, t := range h.traced {
		if err := h.stop(h.procs[t.host], 15*time.Second); err != nil {
			return nil, err
		}
		c := t.receiver.count()
		c.Ratio, c.Requests = t.ratio, requests[t.host]
		out[t.host] = c
	}
	// They no longer run: RouteHosts leaves them out, and so does
	// authorizeAll when the streams part restarts mcp-proxy.
	h.traced = nil
	return out, nil
}

// resetTracing forgets the spans of the authorization at the start.
func (h *Harness) resetTracing() {
	for _, t := range h.traced {
		t.receiver.reset()
	}
}

// traceReceiver is an OTLP/HTTP receiver that counts what it is sent and
// keeps nothing.
type traceReceiver struct {
	mu sync.Mutex
	n  TraceCount
}

func (rc *traceReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("want a POST of OTLP protobuf to /v1/traces: %v", err), http.StatusBadRequest)
		return
	}
	var spans, server int64
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				spans++
				if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
					server++
				}
			}
		}
	}
	rc.mu.Lock()
	rc.n.Exports++
	rc.n.Spans += spans
	rc.n.ServerSpans += server
	rc.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (rc *traceReceiver) count() TraceCount {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

func (rc *traceReceiver) reset() {
	rc.mu.Lock()
	rc.n = TraceCount{}
	rc.mu.Unlock()
}

// TraceRow is one cell's tracing comparison: medians over the rounds of
// mcp-proxy's CPU per request without tracing and with each ratio, and
// each round's ratio to the untraced route measured next to it.
type TraceRow struct {
	Cell
	OffCPU, CPU10, CPU100   float64
	CPU10VsOff, CPU100VsOff float64
	RPS10VsOff, RPS100VsOff float64
	OffRPS, RPS10, RPS100   float64
}

// TraceRows are the cells where a traced proxy was measured.
func (r *Results) TraceRows() []TraceRow {
	var rows []TraceRow
	for _, cell := range r.Cells {
		s := r.Samples[cell]
		off, t10, t100 := s[Proxy], s[ProxyTrace10], s[ProxyTrace100]
		if len(t10)+len(t100) == 0 {
			continue
		}
		rows = append(rows, TraceRow{Cell: cell,
			OffCPU: med(off, hopCPU), CPU10: med(t10, hopCPU), CPU100: med(t100, hopCPU),
			CPU10VsOff: ratio(t10, off, hopCPU), CPU100VsOff: ratio(t100, off, hopCPU),
			OffRPS: med(off, rps), RPS10: med(t10, rps), RPS100: med(t100, rps),
			RPS10VsOff: ratio(t10, off, rps), RPS100VsOff: ratio(t100, off, rps)})
	}
	return rows
}

func (r *Results) writeTracing(w io.Writer) {
	rows := r.TraceRows()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nbench: tracing: the canned answer's route on mcp-proxy processes with tracing on (OTLP/HTTP to a receiver on 127.0.0.1, sampling ratio 0.1 and 1.0) next to the route without; ÷ off is the median of each round's ratio")
	fmt.Fprintln(w, "| upstream | client leg | c | tracing off CPU µs/req | ratio 0.1 CPU µs/req | 0.1 ÷ off | ratio 1.0 CPU µs/req | 1.0 ÷ off | rps 0.1 ÷ off | rps 1.0 ÷ off |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, row := range rows {
		proto := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2"}[row.Proto]
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %.2f× | %.0f | %.2f× | %.2f× | %.2f× |\n", row.Upstream, proto, row.C,
			row.OffCPU, row.CPU10, row.CPU10VsOff, row.CPU100, row.CPU100VsOff, row.RPS10VsOff, row.RPS100VsOff)
	}
}

// TraceChecks say whether each traced proxy's spans reached its receiver
// at its ratio: the request spans received per request it answered, near
// 0.1 for ratio 0.1 (0.05 to 0.2), at least 0.95 for 1.0 (the batch
// processor drops spans when its queue is full; that would show here).
func (r *Results) TraceChecks() []Check {
	var out []Check
	for _, host := range TraceHosts {
		c, ok := r.Traces[host]
		if !ok || c.Requests == 0 {
			continue
		}
		share := float64(c.ServerSpans) / c.Requests
		lo, hi := 0.95, 1.05
		if c.Ratio == "0.1" {
			lo, hi = 0.05, 0.2
		}
		out = append(out, Check{fmt.Sprintf("%s: ratio %s: the receiver got %d request spans for %.0f requests (%.3f each; %d spans in %d exports)",
			host, c.Ratio, c.ServerSpans, c.Requests, share, c.Spans, c.Exports), share >= lo && share <= hi})
	}
	return out
}
