package bench

import (
	"fmt"
	"io"
	"strings"
)

// The streams budget (docs/performance.md, "Idle event streams").
const (
	// MaxStreamKiB is the most resident memory an idle stream may cost the
	// proxy: nginx's figure on these machines.
	MaxStreamKiB = 48
	// MaxAddedP99 is the most the proxy may add to an event's delivery
	// latency at the 99th percentile, in microseconds.
	MaxAddedP99 = 1000
)

var legName = map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2"}

// WriteStreams prints the streams table and its checks.
func WriteStreams(w io.Writer, rows []StreamsRow, rate int) {
	fmt.Fprintf(w, "\nbench: idle event streams: each hop started afresh, warmed with 20 streams, then N MCP sessions opened, each with its GET stream; memory and goroutines read 2s after the last opened; then one event per stream, %d a second; latency from the upstream's write to the client's read; added = the hop's streams' percentile minus that of a tenth as many streams straight to the upstream, open alongside, their events sent among the hop's\n", rate)
	head := "| client leg | hop | streams | opened | RSS before → after | KiB per stream | of it heap in use | of it stacks | goroutines per stream | events delivered | still open | p50 ms | p99 ms | direct p50 ms | direct p99 ms | added p50 ms | added p99 ms |"
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, "|"+strings.Repeat("---|", strings.Count(head, "|")-1))
	for _, r := range rows {
		gor := "—"
		mem := fmt.Sprintf("%.0f → %.0f MiB", float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20))
		if g := r.GoroutinesPerStream(); g >= 0 {
			gor = fmt.Sprintf("%.2f", g)
		}
		e := r.Events
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %.1f | %s | %s | %s | %d/%d | %d | %.2f | %.2f | %.2f | %.2f | %+.2f | %+.2f |\n",
			legName[r.Proto], r.Target, r.N, r.Opened.Opened, mem, r.PerStream(), kib(r.HeapPerStream()), kib(r.StackPerStream()), gor,
			e.Received, e.Streams, e.Open, ms(e.P50), ms(e.P99), ms(e.RefP50), ms(e.RefP99), ms(e.AddedP50()), ms(e.AddedP99()))
	}
	for _, c := range StreamsChecks(rows) {
		verdict := "PASS"
		if !c.OK {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "bench: %s %s\n", verdict, c.What)
	}
}

func kib(x float64) string {
	if x < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", x)
}

func ms(us int64) float64 { return float64(us) / 1e3 }

// StreamsChecks are the streams budget's checks on mcp-proxy's rows: at
// most MaxStreamKiB per idle stream, at most MaxAddedP99 added to an
// event's p99, every stream opened and still open, every event delivered.
func StreamsChecks(rows []StreamsRow) []Check {
	var out []Check
	for _, r := range rows {
		if r.Target != Proxy {
			continue
		}
		leg := legName[r.Proto]
		added := r.Events.AddedP99()
		out = append(out,
			Check{fmt.Sprintf("streams %s at %d: mcp-proxy %.1f KiB per idle stream (budget <= %d KiB at 10000)", leg, r.N, r.PerStream(), MaxStreamKiB),
				r.PerStream() <= MaxStreamKiB},
			Check{fmt.Sprintf("streams %s at %d: mcp-proxy adds %.2f ms to an event's p99 (budget <= %.0f ms)", leg, r.N, ms(added), ms(MaxAddedP99)),
				added <= MaxAddedP99},
			Check{fmt.Sprintf("streams %s at %d: %d opened, %d failed, %d events delivered, %d still open (budget: all)", leg, r.N,
				r.Opened.Opened, r.Opened.Failed, r.Events.Received, r.Events.Open),
				r.Opened.Opened == int64(r.N) && r.Opened.Failed == 0 && r.Events.Received == int64(r.N) && r.Events.Open == int64(r.N)})
	}
	return out
}
