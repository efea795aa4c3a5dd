package store

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Namespace names one kind of record in a Backend. The packages that own a
// kind of record declare its namespace as a constant of this type.
type Namespace string

// SecretKey is the store key of a secret the proxy issued (a token, a code,
// a state, a session id): its SHA-256, so that a copy of the store cannot be
// replayed.
func SecretKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Records is a typed view of one namespace: values are T, JSON-encoded.
// With Hot set, [Records.Hot] serves recent reads from memory.
type Records[T any] struct {
	B  Backend
	NS Namespace
	// Hot caches decoded records for the request path; nil: no cache.
	Hot *HotCache
}

// Get reads the record under key; nil when there is none.
func (r Records[T]) Get(ctx context.Context, key string) (*T, error) {
	b, err := r.B.Get(ctx, string(r.NS), key)
	return decode[T](r.NS, b, err)
}

// Take reads and removes the record under key (single use); nil when there
// is none.
func (r Records[T]) Take(ctx context.Context, key string) (*T, error) {
	b, err := r.B.Take(ctx, string(r.NS), key)
	r.forget(key)
	return decode[T](r.NS, b, err)
}

// Put stores v under key until expires (zero: no expiry).
func (r Records[T]) Put(ctx context.Context, key string, v *T, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.forget(key)
	return r.B.Put(ctx, string(r.NS), key, b, expires)
}

// Delete removes the record under key.
func (r Records[T]) Delete(ctx context.Context, key string) error {
	r.forget(key)
	return r.B.Delete(ctx, string(r.NS), key)
}

// Scan lists the records whose keys start with prefix.
func (r Records[T]) Scan(ctx context.Context, prefix string) ([]*T, error) {
	var out []*T
	err := r.B.Scan(ctx, string(r.NS), prefix, func(_ string, b []byte) error {
		v, err := decode[T](r.NS, b, nil)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Cached is Get through the hot cache: a record read within the cache's
// TTL is not read again. Writes through r apply at once; writes by another
// replica are seen within the TTL. While the backend is unavailable, a
// record read within the cache's Stale window is served from memory (the
// caller still checks that it is valid, by its own expiry), so that a
// store outage does not fail requests the proxy can answer.
func (r Records[T]) Cached(ctx context.Context, key string) (*T, error) {
	if r.Hot == nil {
		return r.Get(ctx, key)
	}
	ck := hotKey{r.NS, key}
	if v, ok := r.Hot.get(ck); ok {
		t, _ := v.(*T)
		return t, nil
	}
	v, err := r.Get(ctx, key)
	switch {
	case errors.Is(err, ErrUnavailable):
		if old, ok := r.Hot.stale(ck); ok {
			t, _ := old.(*T)
			return t, nil
		}
		return nil, err
	case err != nil:
		return nil, err
	case v == nil:
		// Gone from the store (deleted by another replica, expired):
		// no outage may bring it back.
		r.Hot.forget(ck)
		return nil, nil
	}
	r.Hot.put(ck, v)
	return v, nil
}

func (r Records[T]) forget(key string) {
	if r.Hot != nil {
		r.Hot.forget(hotKey{r.NS, key})
	}
}

func decode[T any](ns Namespace, b []byte, err error) (*T, error) {
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("store: a %s record does not decode: %w", ns, err)
	}
	return &v, nil
}

// HotCache holds decoded records for a short time, at most Max of them;
// past Max the least recently used entry goes, never all at once. Safe for
// concurrent use.
type HotCache struct {
	TTL time.Duration
	Max int
	Now func() time.Time
	// Stale is how long after it was read from the store an entry may
	// still be served while the store is unavailable; zero: never.
	Stale time.Duration
	// OnStale, when set, is called for every record served stale, with
	// its namespace.
	OnStale func(Namespace)

	mu      sync.Mutex
	entries map[hotKey]*list.Element
	order   list.List // front: most recently used
}

// hotKey names a cached record: a struct, so that a lookup on the request
// path builds no string.
type hotKey struct {
	ns  Namespace
	key string
}

type hotEntry struct {
	key  hotKey
	v    any
	read time.Time // when it was read from the store
}

// NewHotCache returns a cache of at most max entries, each kept for ttl.
func NewHotCache(ttl time.Duration, max int, now func() time.Time) *HotCache {
	return &HotCache{TTL: ttl, Max: max, Now: now}
}

// Len reports how many entries the cache holds.
func (c *HotCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// get returns an entry read within the TTL. An older one is kept for
// stale while it is within the Stale window.
func (c *HotCache) get(key hotKey) (any, bool) {
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*hotEntry)
	if now.Before(e.read.Add(c.TTL)) {
		c.order.MoveToFront(el)
		return e.v, true
	}
	if !now.Before(e.read.Add(max(c.TTL, c.Stale))) {
		c.order.Remove(el)
		delete(c.entries, key)
	}
	return nil, false
}

// stale returns an entry read within the Stale window, for a store that
// cannot be reached.
func (c *HotCache) stale(key hotKey) (any, bool) {
	now := c.Now()
	c.mu.Lock()
	el, ok := c.entries[key]
	var v any
	if ok {
		e := el.Value.(*hotEntry)
		if ok = now.Before(e.read.Add(c.Stale)); ok {
			v = e.v
			c.order.MoveToFront(el)
		}
	}
	c.mu.Unlock()
	if ok && c.OnStale != nil {
		c.OnStale(key.ns)
	}
	return v, ok
}

func (c *HotCache) put(key hotKey, v any) {
	read := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[hotKey]*list.Element)
	}
	if el, ok := c.entries[key]; ok {
		el.Value = &hotEntry{key: key, v: v, read: read}
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&hotEntry{key: key, v: v, read: read})
	for c.Max > 0 && len(c.entries) > c.Max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*hotEntry).key)
	}
}

func (c *HotCache) forget(key hotKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
		delete(c.entries, key)
	}
}
