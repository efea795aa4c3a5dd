package acme

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// NSCertificates is the store namespace of everything certmagic keeps:
// certificates and their private keys, the ACME account and its key,
// challenge tokens for replicas that did not start the order. The file and
// Redis backends seal its values as they seal tokens.
const NSCertificates store.Namespace = "acme"

// lockLease bounds how long a certmagic lock (an order for a host, the
// account's registration, storage cleaning) holds its lease in the store.
// The store cannot extend a lease, so it must cover one whole attempt:
// certmagic gives an order 90 seconds, and an attempt that fails waits a
// minute before the next, holding the lock. Past the lease another replica
// may start its own order for the host; certmagic checks the storage for a
// certificate after taking a lock, so at worst the CA issues one
// certificate twice. A replica that dies holding a lock delays the others
// by at most this long.
const lockLease = 5 * time.Minute

// Storage is certmagic.Storage on the proxy's store, so replicas that
// share a store (Redis) share certificates, the ACME account and locks.
//
// certmagic's keys are paths ("certificates/<ca>/<host>/<host>.crt"); the
// store has no directories, so a directory is the set of keys below it:
// "a" is a directory when "a/b" is stored, and "ab/c" is not below "a".
// Each value is stored with its modification time in front (8 bytes, Unix
// nanoseconds), which certmagic reads back through Stat.
type Storage struct {
	b   store.Backend
	now func() time.Time

	mu    sync.Mutex
	locks map[string]func() // the unlock of each lock this Storage holds
}

var _ certmagic.Storage = (*Storage)(nil)

// NewStorage returns certmagic's storage on b; now stamps modification
// times (nil: time.Now).
func NewStorage(b store.Backend, now func() time.Time) *Storage {
	if now == nil {
		now = time.Now
	}
	return &Storage{b: b, now: now, locks: map[string]func(){}}
}

// ns is the namespace as the Backend takes it.
var ns = string(NSCertificates)

const stampSize = 8

func notExist(key string) error { return fmt.Errorf("acme storage: %s: %w", key, fs.ErrNotExist) }

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, stampSize+len(value)), uint64(s.now().UnixNano()))
	return s.b.Put(ctx, ns, key, append(v, value...), time.Time{})
}

// checkKey refuses what certmagic never writes: an empty key, or one with
// a leading or trailing slash, which would make the directory rules
// ambiguous.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("acme storage: %q is not a key: use slash-separated names without a leading or trailing slash", key)
	}
	return store.CheckKey(key)
}

// get returns the stamp and value under key, or fs.ErrNotExist.
func (s *Storage) get(ctx context.Context, key string) (time.Time, []byte, error) {
	raw, err := s.b.Get(ctx, ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil, notExist(key)
	}
	if err != nil {
		return time.Time{}, nil, err
	}
	if len(raw) < stampSize {
		return time.Time{}, nil, fmt.Errorf("acme storage: %s: a value of %d bytes has no modification time", key, len(raw))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(raw))), raw[stampSize:], nil
}

// Load implements certmagic.Storage.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	_, v, err := s.get(ctx, key)
	return v, err
}

// below lists the stored keys under the directory dir ("" is the root).
func (s *Storage) below(ctx context.Context, dir string) ([]string, error) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var keys []string
	err := s.b.Scan(ctx, ns, prefix, func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	})
	return keys, err
}

// Delete implements certmagic.Storage: key and everything below it.
func (s *Storage) Delete(ctx context.Context, key string) error {
	keys, err := s.below(ctx, key)
	if err != nil {
		return err
	}
	for _, k := range append(keys, key) {
		if err := s.b.Delete(ctx, ns, k); err != nil {
			return err
		}
	}
	return nil
}

// Exists implements certmagic.Storage: a stored key, or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List implements certmagic.Storage. Without recursive it returns the
// entries directly below dir, files and directories alike; with it, every
// entry at any depth. Keys are full paths, sorted. A dir with nothing
// below it is fs.ErrNotExist.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	keys, err := s.below(ctx, dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, notExist(dir)
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	seen := map[string]bool{}
	for _, k := range keys {
		parts := strings.Split(strings.TrimPrefix(k, prefix), "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			seen[prefix+strings.Join(parts[:i+1], "/")] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	mod, v, err := s.get(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: mod, Size: int64(len(v)), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	found := false
	prefix := key + "/"
	if key == "" {
		prefix = ""
	}
	stop := errors.New("found")
	err = s.b.Scan(ctx, ns, prefix, func(string, []byte) error { found = true; return stop })
	if err != nil && !errors.Is(err, stop) {
		return certmagic.KeyInfo{}, err
	}
	if !found {
		return certmagic.KeyInfo{}, notExist(key)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// Lock implements certmagic.Locker with a lease in the store, held for at
// most lockLease: across replicas sharing the store, one holds name at a
// time. It waits while another holder has it, until ctx is done.
func (s *Storage) Lock(ctx context.Context, name string) error {
	unlock, err := s.b.Lock(ctx, "acme:"+name, lockLease)
	if err != nil {
		return fmt.Errorf("acme storage: lock %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locks[name] = unlock
	return nil
}

// Unlock implements certmagic.Locker. Unlocking a name this Storage does
// not hold is an error.
func (s *Storage) Unlock(_ context.Context, name string) error {
	s.mu.Lock()
	unlock, ok := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("acme storage: unlock %s: not locked here", name)
	}
	unlock()
	return nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "mcp-proxy store" }
