package load

import (
	"fmt"
	"time"
)

// The phases' rules: each returns what did not hold, nothing when all did.

// WarmRules: every request on the warm path was answered, some were, and
// the proxy kept nothing once the load stopped (rule).
func WarmRules(s Summary, rule LeakRule, before, after Snapshot) []string {
	var out []string
	if s.Errors > 0 {
		out = append(out, fmt.Sprintf("%d of %d requests failed on the warm path", s.Errors, s.Requests))
	}
	if s.Requests == 0 {
		out = append(out, "no request was answered")
	}
	if err := rule.Check(before, after); err != nil {
		out = append(out, "leak: "+err.Error())
	}
	return out
}

// RecoveryRules: after a restart (or an outage) every one of clients had
// a request answered (notAnswered counts those that did not), and none is
// left failing.
func RecoveryRules(s Summary, notAnswered, clients int, after string) []string {
	var out []string
	if notAnswered > 0 {
		out = append(out, fmt.Sprintf("%d of %d clients had no request answered after %s", notAnswered, clients, after))
	}
	if s.Unrecovered > 0 {
		out = append(out, fmt.Sprintf("%d clients failed and never recovered", s.Unrecovered))
	}
	return out
}

// RefreshRules: users whose remote tokens were not due saw no failure;
// with serveWhileValid, nobody's request failed while their remote token
// was valid. The note says how many did either way.
func RefreshRules(notDue, all Summary, serveWhileValid bool) (failures []string, note string) {
	if notDue.Errors > 0 {
		failures = append(failures, fmt.Sprintf("%d requests failed of users whose remote tokens were not due for refresh", notDue.Errors))
	}
	note = fmt.Sprintf("%d requests failed while their user's remote token was still valid", all.ValidFailures)
	switch {
	case all.ValidFailures > 0 && serveWhileValid:
		failures = append(failures, note)
	case all.ValidFailures > 0:
		note += " (reported, not a failure: -serve-while-valid=false)"
	}
	return failures, note
}

// AuthorizedAgain lists what grew over a proxy restart that shows a user
// had to authorize again: sign-ins, authorizations and consents at either
// authorization server (their event counters before and after), and the
// times the clients' browsers were sent to authorize.
func AuthorizedAgain(as0, as1, idp0, idp1 map[string]int, browsers0, browsers1 int64) []string {
	var grew []string
	for _, k := range []string{"authorize", "login", "consent"} {
		if d := as1[k] - as0[k]; d != 0 {
			grew = append(grew, fmt.Sprintf("remote authorization server %s +%d", k, d))
		}
		if d := idp1[k] - idp0[k]; d != 0 {
			grew = append(grew, fmt.Sprintf("identity provider %s +%d", k, d))
		}
	}
	if d := browsers1 - browsers0; d != 0 {
		grew = append(grew, fmt.Sprintf("browsers sent to authorize +%d", d))
	}
	return grew
}

// NotAnsweredAfter counts the clients (by index) with no request answered
// that was sent at t or later.
func NotAnsweredAfter(recs []Record, clients []int, t time.Duration) int {
	ok := map[int]bool{}
	for _, r := range recs {
		if r.Kind == "" && r.At >= t {
			ok[r.Client] = true
		}
	}
	n := 0
	for _, c := range clients {
		if !ok[c] {
			n++
		}
	}
	return n
}

// ValidRules: no request failed while its user's tokens were valid (in the
// Redis phases, every token is), whatever happened to the store; after
// names the event.
func ValidRules(s Summary, after string) []string {
	if s.ValidFailures > 0 {
		return []string{fmt.Sprintf("%d requests failed while their users' tokens were valid, before or after %s", s.ValidFailures, after)}
	}
	return nil
}

// ReloadRules: under reloads not one request failed, at least one reload
// was sent, the proxy counted every one sent as a success (a file change
// it noticed on its own may add more) and none as a failure, and every
// reload was served in time (missed lists those that were not).
func ReloadRules(s Summary, sent int, success, failure float64, missed []string) []string {
	var out []string
	if s.Errors > 0 {
		out = append(out, fmt.Sprintf("%d of %d requests failed while the configuration was reloaded", s.Errors, s.Requests))
	}
	if s.Requests == 0 {
		out = append(out, "no request was answered")
	}
	if sent == 0 {
		out = append(out, "no reload was sent")
	}
	if success < float64(sent) || failure > 0 {
		out = append(out, fmt.Sprintf("the proxy counted %.0f reloads as success and %.0f as failure; %d were sent, all valid", success, failure, sent))
	}
	return append(out, missed...)
}
