package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Errors a Backend returns. Callers test them with errors.Is; backends wrap
// them with what was being done.
var (
	// ErrNotFound: no live value under the key (never stored, deleted,
	// taken or expired).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the storage cannot be reached or is closed. The proxy
	// answers such a request with 503 and a request id; nothing was
	// changed that the error does not say.
	ErrUnavailable = errors.New("storage unavailable")
)

// Backend stores records by namespace and key; values are opaque bytes (the
// proxy JSON-encodes its records).
//
// Keys never appear in an error. The file and Redis backends store them
// only under a keyed hash, with the key itself sealed beside the value
// (Scan must return it); the memory backend holds them as given, and
// Redis without a key file keeps them readable in its values. So a key
// that is itself a secret (a session id, a state) must still be hashed by
// the caller, as the proxy does for the tokens and codes it issues.
// Values may be secrets; backends that write to disk or to the network seal
// them (see filestore and redisstore).
//
// Every method is safe for concurrent use. Errors name the namespace and the
// operation, never the key or the value.
type Backend interface {
	// Get returns the value under ns/key, or an error wrapping ErrNotFound
	// when there is none or it has expired.
	Get(ctx context.Context, ns, key string) ([]byte, error)
	// Put stores value under ns/key until expires, replacing what was
	// there. The key must pass CheckKey and the namespace CheckNamespace. A zero expires means no expiry; an expires already past
	// removes the key. The backend keeps its own copy of value.
	Put(ctx context.Context, ns, key string, value []byte, expires time.Time) error
	// Take returns the value under ns/key and removes it, atomically: of
	// concurrent Takes (in any process sharing the backend) exactly one gets
	// the value, the others get ErrNotFound. For single-use codes and
	// states.
	Take(ctx context.Context, ns, key string) ([]byte, error)
	// Delete removes ns/key. Deleting an absent key is not an error.
	Delete(ctx context.Context, ns, key string) error
	// Scan calls fn for each live entry of ns whose key starts with
	// prefix, in no particular order, and stops at fn's first error, which
	// it returns. fn is called outside any transaction, so it may modify
	// the backend; entries changed during the scan may or may not be seen.
	Scan(ctx context.Context, ns, prefix string, fn func(key string, value []byte) error) error
	// Lock takes the lease name for ttl: until unlock is called or ttl has
	// passed, no other Lock of name succeeds in any process sharing the
	// backend. While another holder has it, Lock waits (polling) until it
	// is free or ctx is done, and then returns an error wrapping
	// ctx.Err(). unlock releases the lease only if it is still this
	// holder's: after ttl, another holder may have it, and unlock leaves it
	// alone. Calling unlock more than once is harmless.
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), err error)
	// Close releases the backend's resources. Later calls fail with
	// ErrUnavailable. Closing twice is harmless.
	Close() error
}

// Sweeper is implemented by backends that must free expired entries
// themselves (memory, file); Redis expires keys on its own. The proxy calls
// Sweep periodically.
type Sweeper interface {
	// Sweep removes the entries expired now and returns how many it removed.
	Sweep(ctx context.Context) (removed int, err error)
}

// CheckNamespace reports whether ns can name a namespace in every backend:
// non-empty, at most 64 bytes, of letters, digits, '_', '-' and '.'. Keys
// have no such restriction.
func CheckNamespace(ns string) error {
	if ns == "" || len(ns) > 64 || strings.ContainsFunc(ns, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) {
		return fmt.Errorf("store: namespace %q: use 1 to 64 letters, digits, '_', '-' or '.'", ns)
	}
	return nil
}

// MaxKeyLen is the longest key every backend accepts.
const MaxKeyLen = 4096

// CheckKey reports whether key can be stored: 1 to MaxKeyLen bytes of any
// value.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("store: a key of %d bytes: use 1 to %d bytes", len(key), MaxKeyLen)
	}
	return nil
}

// CheckTTL reports whether ttl is a usable lease duration.
func CheckTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("store: lock ttl %v: use at least 1ms", ttl)
	}
	return nil
}

// Memory is a Backend in process memory: for tests and for a proxy that
// may lose its state on restart. Values are copied in and out.
type Memory struct {
	now   func() time.Time
	locks *LocalLocks

	mu     sync.RWMutex
	ns     map[string]map[string]memEntry
	closed bool
}

type memEntry struct {
	v       []byte
	expires time.Time // zero: never
}

func (e memEntry) live(now time.Time) bool { return e.expires.IsZero() || now.Before(e.expires) }

var (
	_ Backend = (*Memory)(nil)
	_ Sweeper = (*Memory)(nil)
)

// NewMemory returns an empty memory backend on the system clock.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock returns an empty memory backend that reads the time from
// now, for expiry and leases (tests move it instead of sleeping).
func NewMemoryClock(now func() time.Time) *Memory {
	return &Memory{now: now, locks: NewLocalLocks(now), ns: make(map[string]map[string]memEntry)}
}

func (m *Memory) check(op, ns string) error {
	if m.closed {
		return fmt.Errorf("store: memory %s %s: %w: the backend is closed", op, ns, ErrUnavailable)
	}
	return CheckNamespace(ns)
}

// Get implements Backend.
func (m *Memory) Get(_ context.Context, ns, key string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("get", ns); err != nil {
		return nil, err
	}
	e, ok := m.ns[ns][key]
	if !ok || !e.live(m.now()) {
		return nil, fmt.Errorf("store: memory get %s: %w", ns, ErrNotFound)
	}
	return clone(e.v), nil
}

// Put implements Backend.
func (m *Memory) Put(_ context.Context, ns, key string, value []byte, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("put", ns); err != nil {
		return err
	}
	if err := CheckKey(key); err != nil {
		return err
	}
	b := m.ns[ns]
	if !expires.IsZero() && !m.now().Before(expires) {
		delete(b, key)
		return nil
	}
	if b == nil {
		b = make(map[string]memEntry)
		m.ns[ns] = b
	}
	b[key] = memEntry{v: clone(value), expires: expires}
	return nil
}

// Take implements Backend.
func (m *Memory) Take(_ context.Context, ns, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("take", ns); err != nil {
		return nil, err
	}
	e, ok := m.ns[ns][key]
	delete(m.ns[ns], key)
	if !ok || !e.live(m.now()) {
		return nil, fmt.Errorf("store: memory take %s: %w", ns, ErrNotFound)
	}
	return e.v, nil
}

// Delete implements Backend.
func (m *Memory) Delete(_ context.Context, ns, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("delete", ns); err != nil {
		return err
	}
	delete(m.ns[ns], key)
	return nil
}

// Scan implements Backend. It visits keys in byte order.
func (m *Memory) Scan(ctx context.Context, ns, prefix string, fn func(key string, value []byte) error) error {
	type kv struct {
		k string
		v []byte
	}
	var snap []kv
	m.mu.RLock()
	if err := m.check("scan", ns); err != nil {
		m.mu.RUnlock()
		return err
	}
	now := m.now()
	for k, e := range m.ns[ns] {
		if strings.HasPrefix(k, prefix) && e.live(now) {
			snap = append(snap, kv{k, clone(e.v)})
		}
	}
	m.mu.RUnlock()
	sort.Slice(snap, func(i, j int) bool { return snap[i].k < snap[j].k })
	for _, e := range snap {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// Lock implements Backend. The lease is exclusive within this process,
// which is all a memory backend is shared by.
func (m *Memory) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("store: memory lock: %w: the backend is closed", ErrUnavailable)
	}
	return m.locks.Lock(ctx, name, ttl)
}

// Sweep implements Sweeper.
func (m *Memory) Sweep(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, n := m.now(), 0
	for _, b := range m.ns {
		for k, e := range b {
			if !e.live(now) {
				delete(b, k)
				n++
			}
		}
	}
	return n, nil
}

// Close implements Backend. The values are dropped.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.ns = nil
	return nil
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// LocalLocks are leases held in this process: the Lock of the memory and
// file backends, whose storage only one process uses. The zero value is
// not usable; call NewLocalLocks.
type LocalLocks struct {
	now  func() time.Time
	mu   sync.Mutex
	held map[string]*localLease
	// pruneAt is the table size at which leases that ran out without an
	// unlock (single-use markers, such as client assertion ids) are
	// dropped; it doubles with what stays, so pruning costs O(1) a lock.
	pruneAt int
}

// minPrune is the smallest table that is pruned.
const minPrune = 1024

type localLease struct {
	expires  time.Time
	released chan struct{} // closed by unlock
}

// NewLocalLocks returns an empty lease table on the clock now.
func NewLocalLocks(now func() time.Time) *LocalLocks {
	return &LocalLocks{now: now, held: make(map[string]*localLease)}
}

// Lock implements Backend.Lock within one process.
func (l *LocalLocks) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	if err := CheckTTL(ttl); err != nil {
		return nil, err
	}
	wait := time.Millisecond
	for {
		l.mu.Lock()
		now := l.now()
		cur := l.held[name]
		if cur == nil || !now.Before(cur.expires) {
			mine := &localLease{expires: now.Add(ttl), released: make(chan struct{})}
			l.held[name] = mine
			l.prune(now)
			l.mu.Unlock()
			return func() { l.unlock(name, mine) }, nil
		}
		released := cur.released
		l.mu.Unlock()
		// A release wakes the waiter at once; polling notices a lease
		// that ran out (possibly on an injected clock).
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock: held by another holder until it unlocks or its ttl passes: %w", ctx.Err())
		case <-released:
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, 25*time.Millisecond)
	}
}

// prune drops the leases that ran out, once the table reaches pruneAt.
// Waiters on a dropped lease notice by polling.
func (l *LocalLocks) prune(now time.Time) {
	if len(l.held) < max(l.pruneAt, minPrune) {
		return
	}
	for name, lease := range l.held {
		if !now.Before(lease.expires) {
			delete(l.held, name)
		}
	}
	l.pruneAt = 2 * len(l.held)
}

func (l *LocalLocks) unlock(name string, mine *localLease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] == mine {
		delete(l.held, name)
		close(mine.released)
	}
}
