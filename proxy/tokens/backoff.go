package tokens

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// Backoff after a failed refresh: the first wait, its cap, and how long
// before expiry the last attempt is made at most (a quarter of the
// refresh window for shorter windows). docs/advanced.md, "Refreshing
// remote tokens", says the same.
// Once the token has expired its user is held up by every failure, so the
// waits stop growing at expiredBackoffMax: a user is back within seconds of
// the server, and the server sees at most one attempt per token that often.
const (
	backoffFirst      = time.Second
	backoffMax        = 30 * time.Second
	expiredBackoffMax = 5 * time.Second
	lastTryMargin     = time.Second
)

// streaks holds, per binding key, whether a background refresh runs and
// the failure streak of its refreshes; in memory, each replica its own.
// The zero value is ready to use.
type streaks struct {
	mu   sync.Mutex
	keys map[string]*streak
}

type streak struct {
	behind   bool // a background refresh runs
	failures int  // failed attempts in a row
	since    time.Time
	next     time.Time       // no attempt before this
	reply    *apierror.Error // the answer to an expired token's request until next
}

// startBehind reports whether a background refresh of key may start at
// now (none runs, and the key is not waiting after a failure) and marks
// it running.
func (ss *streaks) startBehind(key string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := ss.keys[key]
	if st == nil {
		if ss.keys == nil {
			ss.keys = make(map[string]*streak)
		}
		st = &streak{}
		ss.keys[key] = st
	}
	if st.behind || now.Before(st.next) {
		return false
	}
	st.behind = true
	return true
}

// endBehind notes that key's background refresh ended.
func (ss *streaks) endBehind(key string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if st := ss.keys[key]; st != nil {
		st.behind = false
		ss.tidy(key, st)
	}
}

// waiting returns the answer for a request of key's expired token while
// the key waits after a failure; nil when an attempt may be made.
func (ss *streaks) waiting(key string, now time.Time) *apierror.Error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if st := ss.keys[key]; st != nil && st.failures > 0 && now.Before(st.next) {
		return st.reply
	}
	return nil
}

// fail notes a failed attempt for key, whose token is t, at now, and
// returns the number of failures in a row. jitter, in [0, 1), shortens the
// wait by up to half.
func (ss *streaks) fail(key string, now time.Time, t *upstream.Token, reply *apierror.Error, jitter float64) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := ss.keys[key]
	if st == nil {
		if ss.keys == nil {
			ss.keys = make(map[string]*streak)
		}
		st = &streak{}
		ss.keys[key] = st
	}
	st.failures++
	if st.failures == 1 {
		st.since = now
	}
	st.reply = reply
	st.next = nextAttempt(now, st.failures, jitter, t)
	return st.failures
}

// nextAttempt is when the attempt after the n-th failure in a row may be
// made: 1 s, 2 s, 4 s, … at most 30 s after now (5 s once t has
// expired), shortened by up to half (jitter), but never past the last try
// before t expires while that is still ahead.
func nextAttempt(now time.Time, n int, jitter float64, t *upstream.Token) time.Time {
	wait := min(backoffFirst<<min(n-1, 5), backoffMax)
	if !t.Expiry.IsZero() && !now.Before(t.Expiry) {
		wait = min(wait, expiredBackoffMax)
	}
	wait -= time.Duration(jitter * float64(wait/2))
	next := now.Add(wait)
	if t.Expiry.IsZero() {
		return next
	}
	last := t.Expiry.Add(-min(lastTryMargin, window(t)/4))
	if now.Before(last) && next.After(last) {
		return last
	}
	return next
}

// end closes key's failure streak and returns it; false when there was
// none.
func (ss *streaks) end(key string) (streak, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := ss.keys[key]
	if st == nil || st.failures == 0 {
		return streak{}, false
	}
	ended := *st
	st.failures, st.since, st.next, st.reply = 0, time.Time{}, time.Time{}, nil
	ss.tidy(key, st)
	return ended, true
}

// drop forgets key's failure streak without a word: its token is gone.
func (ss *streaks) drop(key string) { _, _ = ss.end(key) }

// tidy removes an entry that holds nothing; the caller holds mu.
func (ss *streaks) tidy(key string, st *streak) {
	if !st.behind && st.failures == 0 {
		delete(ss.keys, key)
	}
}

func (s *Source) jitter() float64 {
	if s.Jitter != nil {
		return s.Jitter()
	}
	return rand.Float64()
}
