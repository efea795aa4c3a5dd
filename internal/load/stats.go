package load

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is one tools/call a client sent: when (since the phase began),
// how long it took, and the kind of its failure ("" when it succeeded).
type Record struct {
	Client int
	At     time.Duration
	Took   time.Duration
	Kind   string
	// Valid is set on a failure sent while the remote token the proxy
	// held for the client's user was still valid (see validity).
	Valid bool
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted
// durations: the smallest value with at least p % of the values at or
// below it. Zero for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// statusRE finds an HTTP status in an error text.
var statusRE = regexp.MustCompile(`\b([45][0-9][0-9])\b`)

// Classify names the kind of a failed call's error, for the report's
// "errors by kind": timeout, connection (refused, reset, closed), session
// lost, HTTP <status>, tool error, or other.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "deadline exceeded"):
		return "timeout"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "use of closed network connection") ||
		strings.Contains(msg, "terminated without response"):
		return "connection"
	case strings.Contains(msg, "session not found") || strings.Contains(msg, "session missing") || strings.Contains(msg, "connection closed"):
		return "session lost"
	}
	if m := statusRE.FindStringSubmatch(msg); m != nil {
		return "HTTP " + m[1]
	}
	for code := 400; code < 600; code++ {
		if t := http.StatusText(code); t != "" && strings.Contains(msg, t) {
			return "HTTP " + strconv.Itoa(code)
		}
	}
	if strings.Contains(msg, "tool error") {
		return "tool error"
	}
	return "other"
}

// Summary is what a set of records adds up to.
type Summary struct {
	Requests, Errors int
	// ErrorsByKind counts the failures of each kind.
	ErrorsByKind map[string]int
	P50, P99     time.Duration // latency of the calls that succeeded
	Max          time.Duration
	RPS          float64
	// FirstError and LastError are when the first and the last failure
	// was answered (since the phase began); zero without failures.
	FirstError, LastError time.Duration
	// ClientsFailed is how many clients saw at least one failure;
	// Unrecovered how many of them had no success after their last one.
	ClientsFailed, Unrecovered int
	// ValidFailures are failures of requests sent while the client's
	// remote token was still valid.
	ValidFailures int
}

// Summarize adds up recs, measured over window.
func Summarize(recs []Record, window time.Duration) Summary {
	s := Summary{ErrorsByKind: map[string]int{}}
	var ok []time.Duration
	lastErr := map[int]time.Duration{}
	lastOK := map[int]time.Duration{}
	for _, r := range recs {
		s.Requests++
		if r.Kind == "" {
			ok = append(ok, r.Took)
			lastOK[r.Client] = max(lastOK[r.Client], r.At+r.Took)
			continue
		}
		s.Errors++
		s.ErrorsByKind[r.Kind]++
		if r.Valid {
			s.ValidFailures++
		}
		if end := r.At + r.Took; s.Errors == 1 || end < s.FirstError {
			s.FirstError = end
		}
		s.LastError = max(s.LastError, r.At+r.Took)
		if t, seen := lastErr[r.Client]; !seen || r.At > t {
			lastErr[r.Client] = r.At
		}
	}
	slices.Sort(ok)
	s.P50, s.P99 = Percentile(ok, 50), Percentile(ok, 99)
	if len(ok) > 0 {
		s.Max = ok[len(ok)-1]
	}
	if window > 0 {
		s.RPS = float64(len(ok)) / window.Seconds()
	}
	s.ClientsFailed = len(lastErr)
	for c, t := range lastErr {
		if lastOK[c] <= t {
			s.Unrecovered++
		}
	}
	return s
}

// Kinds lists the error kinds of s, the most frequent first.
func (s Summary) Kinds() []string {
	kinds := make([]string, 0, len(s.ErrorsByKind))
	for k := range s.ErrorsByKind {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if d := s.ErrorsByKind[b] - s.ErrorsByKind[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return kinds
}

// Issue is a remote token the authorization server issued: when, and how
// long it lives.
type Issue struct {
	At  time.Time
	TTL time.Duration
}

// MarkValid sets Valid on every failure in recs that was sent while the
// latest token issued for its client's user before then was still valid,
// by margin at least. issues holds each client's tokens in the order they
// were issued; start is when recs' clock began.
func MarkValid(recs []Record, start time.Time, issues map[int][]Issue, margin time.Duration) {
	for i := range recs {
		r := &recs[i]
		if r.Kind == "" {
			continue
		}
		sent := start.Add(r.At)
		var latest *Issue
		for j := range issues[r.Client] {
			if is := &issues[r.Client][j]; is.At.Before(sent) {
				latest = is
			}
		}
		r.Valid = latest != nil && sent.Before(latest.At.Add(latest.TTL-margin))
	}
}
