// Package store holds the proxy's state: browser sessions, pending
// authorizations, codes, the grants it issued to MCP clients, and the
// upstream tokens it acquired for them.
//
// Secrets the proxy issues (access and refresh tokens, codes) are stored only
// as their SHA-256 hash: a copy of the store cannot be replayed. Upstream
// tokens are stored as received, because the proxy must send them on; the
// memory store keeps them in process memory only.
package store

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Hash is the key under which an issued secret is stored.
type Hash [sha256.Size]byte

// HashOf returns the hash of an issued secret.
func HashOf(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// TTLMap is a concurrency-safe map whose entries expire. Reads check expiry;
// Sweep frees expired entries.
type TTLMap[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time // zero: never
}

// Put stores v under k until expires (zero: forever).
func (t *TTLMap[K, V]) Put(k K, v V, expires time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[K]ttlEntry[V])
	}
	t.m[k] = ttlEntry[V]{v: v, expires: expires}
}

// Get returns the value under k if present and not expired at now.
func (t *TTLMap[K, V]) Get(k K, now time.Time) (V, bool) {
	t.mu.RLock()
	e, ok := t.m[k]
	t.mu.RUnlock()
	if !ok || (!e.expires.IsZero() && !now.Before(e.expires)) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Take returns and removes the value under k: single use. An expired value
// is removed and not returned.
func (t *TTLMap[K, V]) Take(k K, now time.Time) (V, bool) {
	t.mu.Lock()
	e, ok := t.m[k]
	delete(t.m, k)
	t.mu.Unlock()
	if !ok || (!e.expires.IsZero() && !now.Before(e.expires)) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Delete removes k.
func (t *TTLMap[K, V]) Delete(k K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, k)
}

// DeleteFunc removes every entry for which del returns true.
func (t *TTLMap[K, V]) DeleteFunc(del func(K, V) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if del(k, e.v) {
			delete(t.m, k)
		}
	}
}

// Range calls fn for every entry, expired or not, under the read lock:
// fn must not call back into the map.
func (t *TTLMap[K, V]) Range(fn func(K, V)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for k, e := range t.m {
		fn(k, e.v)
	}
}

// Len returns the number of entries, expired or not.
func (t *TTLMap[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Sweep removes the entries expired at now.
func (t *TTLMap[K, V]) Sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(t.m, k)
		}
	}
}
