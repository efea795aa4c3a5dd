package load

import (
	"strings"
	"testing"
	"time"
)

func TestWarmRules(t *testing.T) {
	steady := Snapshot{Goroutines: 500, HeapInuse: 40 << 20}
	if f := WarmRules(Summary{Requests: 10}, DefaultLeakRule, steady, steady); len(f) != 0 {
		t.Errorf("a clean warm phase failed: %v", f)
	}
	for _, c := range []struct {
		s     Summary
		after Snapshot
		want  string
	}{
		{Summary{Requests: 10, Errors: 1}, steady, "1 of 10 requests failed on the warm path"},
		{Summary{}, steady, "no request was answered"},
		{Summary{Requests: 10}, Snapshot{Goroutines: 551, HeapInuse: 40 << 20}, "leak: goroutines grew from 500 to 551"},
	} {
		f := WarmRules(c.s, DefaultLeakRule, steady, c.after)
		if len(f) != 1 || !strings.Contains(f[0], c.want) {
			t.Errorf("%+v, %+v: %v, want %q", c.s, c.after, f, c.want)
		}
	}
}

func TestRecoveryRules(t *testing.T) {
	if f := RecoveryRules(Summary{Errors: 40, ClientsFailed: 40}, 0, 40, "the restart"); len(f) != 0 {
		t.Errorf("clients that all recovered: %v", f)
	}
	f := RecoveryRules(Summary{Errors: 41, ClientsFailed: 40, Unrecovered: 1}, 1, 40, "the restart")
	if len(f) != 2 || f[0] != "1 of 40 clients had no request answered after the restart" || f[1] != "1 clients failed and never recovered" {
		t.Errorf("one client left failing: %q", f)
	}
}

func TestRefreshRules(t *testing.T) {
	clean, validFail := Summary{}, Summary{Errors: 3, ValidFailures: 2}
	if f, note := RefreshRules(clean, validFail, false); len(f) != 0 || !strings.Contains(note, "2 requests failed while") || !strings.Contains(note, "-serve-while-valid=false") {
		t.Errorf("reported only: %v, %q", f, note)
	}
	if f, _ := RefreshRules(clean, validFail, true); len(f) != 1 || !strings.Contains(f[0], "2 requests failed while their user's remote token was still valid") {
		t.Errorf("with -serve-while-valid: %v", f)
	}
	if f, _ := RefreshRules(Summary{Errors: 1}, clean, false); len(f) != 1 || !strings.Contains(f[0], "not due for refresh") {
		t.Errorf("a user whose token was not due failed: %v", f)
	}
}

func TestAuthorizedAgain(t *testing.T) {
	c := map[string]int{"authorize": 250, "login": 250, "consent": 250, "token": 900}
	more := map[string]int{"authorize": 250, "login": 250, "consent": 250, "token": 1400} // refreshes only
	if g := AuthorizedAgain(c, more, c, c, 250, 250); len(g) != 0 {
		t.Errorf("token requests alone are no new authorization: %v", g)
	}
	again := map[string]int{"authorize": 251, "login": 251, "consent": 251}
	g := AuthorizedAgain(c, again, c, c, 250, 251)
	if len(g) != 4 || g[0] != "remote authorization server authorize +1" || g[3] != "browsers sent to authorize +1" {
		t.Errorf("one user authorized again: %q", g)
	}
}

func TestNotAnsweredAfter(t *testing.T) {
	s := time.Second
	recs := []Record{{Client: 1, At: 6 * s}, {Client: 2, At: 4 * s}, {Client: 2, At: 7 * s, Kind: "HTTP 502"}}
	if n := NotAnsweredAfter(recs, []int{1, 2, 3}, 5*s); n != 2 {
		t.Errorf("NotAnsweredAfter = %d, want 2 (client 2 answered only before, client 3 never)", n)
	}
}

func TestReportLine(t *testing.T) {
	r := &Report{Opts: Options{Clients: 2}, Phases: []*Phase{
		{Name: "warm path", Rows: []Row{{Summary: Summary{Requests: 10, P50: time.Millisecond, P99: 2 * time.Millisecond, RPS: 5}}}},
		{Name: "upstream restarted", Rows: []Row{{Summary: Summary{Requests: 8, Errors: 2}}}},
	}}
	if l := r.Line(); !strings.HasPrefix(l, "load: PASS: warm path 2 clients: 10 requests, 0 failed, p50 1.0 ms, p99 2.0 ms") ||
		!strings.Contains(l, "upstream restarted: 8 requests, 2 failed") {
		t.Errorf("passing line: %s", l)
	}
	r.Phases[1].Failures = []string{"1 clients failed and never recovered"}
	if l := r.Line(); !strings.HasPrefix(l, "load: FAIL: upstream restarted: 1 clients failed and never recovered (") {
		t.Errorf("failing line: %s", l)
	}
}

func TestValidRules(t *testing.T) {
	if got := ValidRules(Summary{}, "the outage"); got != nil {
		t.Errorf("no failures: %v", got)
	}
	if got := ValidRules(Summary{Errors: 3, ValidFailures: 2}, "the outage"); len(got) != 1 || !strings.Contains(got[0], "2 requests failed while their users' tokens were valid") {
		t.Errorf("two failures while valid: %v", got)
	}
}

// The Redis phases' rows: a client that failed in one window and had an
// answer in a later one recovered; the recovery is when the last failed
// client had its first answer after its last failure.
func TestWindowedAndRecovery(t *testing.T) {
	s := time.Second
	recs := []Record{
		{Client: 1, At: 4 * s, Took: s / 2, Kind: "connection"}, // fails at the event (5 s)
		{Client: 1, At: 6 * s, Took: s / 2},                     // answered at 6.5 s
		{Client: 2, At: 4 * s, Took: s, Kind: "connection"},
		{Client: 2, At: 5 * s, Took: s, Kind: "initialize: connection"},
		{Client: 2, At: 7 * s, Took: s},                   // answered at 8 s
		{Client: 3, At: 2 * s, Took: s, Kind: "HTTP 503"}, // never answered again
	}
	rows := windowed(recs, []window{{"before", 0, 5 * s}, {"after", 5 * s, 10 * s}})
	if rows[0].Requests != 3 || rows[0].Errors != 3 || rows[0].Unrecovered != 1 || rows[0].ClientsFailed != 3 {
		t.Errorf("before: %+v; want 3 requests, 3 failed, 1 not recovered (client 3)", rows[0].Summary)
	}
	if rows[1].Requests != 3 || rows[1].Unrecovered != 0 {
		t.Errorf("after: %+v; want 3 requests, every client recovered", rows[1].Summary)
	}
	if got := recovery(recs, 5*s); got != 3*s {
		t.Errorf("recovery = %v, want 3s (client 2 answered at 8 s)", got)
	}
	if got := recovery(recs[:2], 9*s); got != 0 {
		t.Errorf("recovery with no failure after the event = %v, want 0", got)
	}
}

func TestReloadRules(t *testing.T) {
	ok := Summary{Requests: 100}
	if f := ReloadRules(ok, 14, 15, 0, nil); len(f) != 0 {
		t.Errorf("every reload counted, one more from the file watch: %v", f)
	}
	for _, c := range []struct {
		s                Summary
		sent             int
		success, failure float64
		missed           []string
		want             string
	}{
		{Summary{Requests: 100, Errors: 1}, 14, 14, 0, nil, "1 of 100 requests failed while the configuration was reloaded"},
		{ok, 0, 0, 0, nil, "no reload was sent"},
		{ok, 14, 13, 0, nil, "the proxy counted 13 reloads as success and 0 as failure; 14 were sent"},
		{ok, 14, 14, 1, nil, "the proxy counted 14 reloads as success and 1 as failure"},
		{ok, 14, 14, 0, []string{"reload 3 at 6.0s: not applied within 2s"}, "reload 3 at 6.0s"},
	} {
		f := ReloadRules(c.s, c.sent, c.success, c.failure, c.missed)
		if len(f) != 1 || !strings.Contains(f[0], c.want) {
			t.Errorf("%+v sent %d, %v/%v: %q, want %q", c.s, c.sent, c.success, c.failure, f, c.want)
		}
	}
}
