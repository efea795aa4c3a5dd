package dpopcheck

import (
	"sync"
	"time"
)

// DefaultReplayEntries bounds a ReplayCache whose Max is zero.
const DefaultReplayEntries = 10000

// ReplayCache remembers the jtis of accepted proofs until they expire, so a
// proof is accepted once (RFC 9449 §11.1). It is bounded: when full, the
// oldest entry is forgotten first. Entries should be remembered in the
// order they expire (a fixed lifetime from now does that). The zero value is
// ready.
type ReplayCache struct {
	// Max is how many jtis are remembered at most; zero means
	// DefaultReplayEntries.
	Max int
	// Now is the clock that expires entries; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time
	order []replayEntry // insertion order, for expiry and eviction
}

type replayEntry struct {
	jti     string
	expires time.Time
}

// Remember records jti until expires and reports whether it was new: false
// means an unexpired entry already held it, a replay.
func (c *ReplayCache) Remember(jti string, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.sweep(now)
	if exp, ok := c.seen[jti]; ok && now.Before(exp) {
		return false
	}
	limit := c.Max
	if limit <= 0 {
		limit = DefaultReplayEntries
	}
	for len(c.seen) >= limit && len(c.order) > 0 {
		c.forgetOldest()
	}
	c.seen[jti] = expires
	c.order = append(c.order, replayEntry{jti, expires})
	return true
}

// Len returns how many jtis are remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// sweep forgets the entries that expired by now, oldest first.
func (c *ReplayCache) sweep(now time.Time) {
	for len(c.order) > 0 && !now.Before(c.order[0].expires) {
		c.forgetOldest()
	}
}

func (c *ReplayCache) forgetOldest() {
	e := c.order[0]
	c.order = c.order[1:]
	// A jti remembered again later has a newer entry; only the map entry
	// that this queue entry wrote is removed.
	if c.seen[e.jti].Equal(e.expires) {
		delete(c.seen, e.jti)
	}
}
