package load

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Print writes every phase's table (Markdown, as docs/performance.md
// quotes it), its events and notes, and the final line: "load: PASS: …"
// or "load: FAIL: …".
func (r *Report) Print(w io.Writer) {
	for _, p := range r.Phases {
		fmt.Fprintf(w, "\n### %s\n\n", p.Name)
		if p.Extended {
			fmt.Fprintln(w, "| window | requests | failed | failed while tokens valid | failures by kind | p50 | p99 | max | answered/s | clients failed | not recovered | recovery |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
		} else {
			fmt.Fprintln(w, "| clients, window | requests | failed | failures by kind | p50 | p99 | max | answered/s | clients failed | not recovered |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		}
		for _, row := range p.Rows {
			if p.Extended {
				fmt.Fprintf(w, "| %s | %d | %d | %d | %s | %s | %s | %s | %.0f | %d | %d | %s |\n", row.Label, row.Requests, row.Errors, row.ValidFailures,
					kinds(row.Summary), ms(row.P50), ms(row.P99), ms(row.Max), row.RPS, row.ClientsFailed, row.Unrecovered, ms(row.Recovery))
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %.0f | %d | %d |\n", row.Label, row.Requests, row.Errors,
				kinds(row.Summary), ms(row.P50), ms(row.P99), ms(row.Max), row.RPS, row.ClientsFailed, row.Unrecovered)
		}
		fmt.Fprintln(w)
		for _, e := range p.Events {
			fmt.Fprintln(w, "- "+e)
		}
		for _, n := range p.Notes {
			fmt.Fprintln(w, "- "+n)
		}
		for _, k := range slices.Sorted(maps.Keys(p.Tally.Examples)) {
			fmt.Fprintf(w, "- first %s: %s\n", k, p.Tally.Examples[k])
		}
		for _, f := range p.Failures {
			fmt.Fprintln(w, "- FAILED: "+f)
		}
	}
	fmt.Fprintf(w, "\nproxy once every session closed: %d goroutines, heap in use %s, RSS %s\n\n",
		r.Final.Goroutines, MiB(r.Final.HeapInuse), MiB(r.Final.RSS))
	fmt.Fprintln(w, r.Line())
}

// Line is the run's last line.
func (r *Report) Line() string {
	var parts []string
	if len(r.Phases) > 0 && len(r.Phases[0].Rows) > 0 {
		s := r.Phases[0].Rows[0].Summary
		parts = append(parts, fmt.Sprintf("warm path %d clients: %d requests, %d failed, p50 %s, p99 %s, %.0f answered/s; goroutines %d → %d, heap in use %s → %s",
			r.Opts.Clients, s.Requests, s.Errors, ms(s.P50), ms(s.P99), s.RPS,
			r.Before.Goroutines, r.After.Goroutines, MiB(r.Before.HeapInuse), MiB(r.After.HeapInuse)))
	}
	for _, p := range r.Phases[min(1, len(r.Phases)):] {
		var calls, failed int
		for _, row := range p.Rows {
			calls += row.Requests
			failed += row.Errors
		}
		parts = append(parts, fmt.Sprintf("%s: %d requests, %d failed", p.Name, calls, failed))
	}
	if f := r.Failed(); len(f) > 0 {
		return "load: FAIL: " + strings.Join(f, "; ") + " (" + strings.Join(parts, "; ") + ")"
	}
	return "load: PASS: " + strings.Join(parts, "; ")
}

func kinds(s Summary) string {
	if s.Errors == 0 {
		return "—"
	}
	var out []string
	for _, k := range s.Kinds() {
		out = append(out, fmt.Sprintf("%s %d", k, s.ErrorsByKind[k]))
	}
	return strings.Join(out, ", ")
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
