// Package filestore is the proxy's embedded durable store, the default of
// mcp-proxy serve: a single bbolt file whose values are sealed with
// AES-256-GCM under a key from a key file. A restarted proxy finds every
// token it had, so no user has to consent again.
//
// On disk, each namespace is a bbolt bucket. Keys are sealed too: a record
// is stored under the HMAC-SHA256 of its namespace and key (under a key
// derived from the key file), so the file does not show who uses which
// client or which remote server. Each value is
//
//	version (1 byte, 2) | expires (8 bytes, big-endian Unix nanoseconds, 0 = never) | nonce | ciphertext
//
// where the ciphertext holds the key and the value, sealed with the
// additional data version|expires|ns|0x00|disk key: a value copied to
// another key or namespace, or given a later expiry, no longer opens. A
// store written by an earlier version (format 1, keys in the clear) is
// rewritten in this format when it is opened.
//
// One process uses a store file at a time: bbolt locks the file, and Open
// fails with a clear error when another process (or another Open in this
// one) has it. Leases are therefore held in process memory.
package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// DefaultLockTimeout is how long Open waits for another process to release
// the store file before it gives up.
const DefaultLockTimeout = time.Second

const (
	formatVersion = 1
	headerLen     = 1 + 8
	// metaBucket holds the key check. Its name is not a valid namespace
	// (store.CheckNamespace), so it cannot collide with one.
	metaBucket = "\x00mcp-proxy"
	checkKey   = "key-check"
	checkValue = "mcp-proxy filestore: this value opens with the right key file"
)

// Options configure OpenWith. The zero value of each field is its default.
type Options struct {
	// KeyFile is the sealing key's file (see store.LoadKeyFile); created
	// with a new key on first start. Required.
	KeyFile string
	// Now is the clock for expiry and leases. Nil means time.Now.
	Now func() time.Time
	// LockTimeout bounds the wait for another process holding the store
	// file. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Store is a store.Backend in a bbolt file.
type Store struct {
	path   string
	db     *bolt.DB
	sealer *store.Sealer
	names  []byte // the HMAC key of disk keys
	now    func() time.Time
	locks  *store.LocalLocks

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Backend = (*Store)(nil)
	_ store.Sweeper = (*Store)(nil)
)

// Open opens (creating when absent) the store file at path with the key in
// keyFile, on the clock now (nil: time.Now). See OpenWith.
func Open(path, keyFile string, now func() time.Time) (*Store, error) {
	return OpenWith(path, Options{KeyFile: keyFile, Now: now})
}

// OpenWith opens (creating when absent) the store file at path.
//
// It refuses, each with an error that names the file and what to do: a key
// file that others may read or of the wrong length; a store file that
// another process has open; a store file that is not a bbolt file or whose
// pages fail bbolt's consistency check; and a key file that is not the one
// the store was written with (checked against a sealed marker, so a wrong
// key is found at start and not at the first read of a token).
func OpenWith(path string, o Options) (*Store, error) {
	if o.KeyFile == "" {
		return nil, fmt.Errorf("filestore: %s: no key file given", path)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("filestore: store file %s: its directory: %w", path, err)
		}
	}
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		if _, err := os.Stat(o.KeyFile); errors.Is(err, os.ErrNotExist) {
			// Creating a new key would not open a single value.
			return nil, fmt.Errorf("filestore: key file %s does not exist but store file %s does: restore the key file the store was written with, "+
				"or move the store file aside to start with an empty store (every user will then have to consent again)", o.KeyFile, path)
		}
	}
	key, _, err := store.LoadKeyFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	sealer, err := store.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	db, err := openBolt(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, db: db, sealer: sealer, names: nameKey(key), now: o.Now, locks: store.NewLocalLocks(o.Now)}
	if err := s.checkFile(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.checkKey(o.KeyFile); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.upgrade(o.LockTimeout); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	// bbolt panics on some malformed files instead of returning an error.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corrupted(path, fmt.Errorf("bbolt failed reading it: %v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("filestore: store file %s is in use by another process (another mcp-proxy with the same store?); stop it or give this one its own file", path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrInvalidMapping):
		return nil, corrupted(path, err)
	case os.IsPermission(err):
		return nil, fmt.Errorf("filestore: store file %s: %w; the proxy's user must be able to read and write it", path, err)
	default:
		// bbolt reports a short or garbled file in several ways
		// ("file size too small", page errors); a file that exists but
		// does not open is corrupted as far as the operator can tell.
		if st, serr := os.Stat(path); serr == nil && st.Size() > 0 {
			return nil, corrupted(path, err)
		}
		return nil, fmt.Errorf("filestore: store file %s: %w", path, err)
	}
}

func corrupted(path string, cause error) error {
	return fmt.Errorf("filestore: store file %s is corrupted or not an mcp-proxy store (%v); restore it from a backup, "+
		"or move it aside to start with an empty store (every user will then have to consent again)", path, cause)
}

// checkFile runs bbolt's page consistency check, so a damaged file is
// refused at start rather than failing (or panicking) on a later read. It
// reads every page: fast for a store of tokens (milliseconds for
// megabytes).
func (s *Store) checkFile() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupted(s.path, fmt.Errorf("bbolt failed reading it: %v", r))
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			if err == nil {
				err = corrupted(s.path, cerr)
			}
		}
		return err
	})
}

// checkKey opens the sealed marker, writing it on a new store.
func (s *Store) checkKey(keyFile string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return fmt.Errorf("filestore: store file %s: %w", s.path, err)
		}
		if v := b.Get([]byte(checkKey)); v != nil {
			got, _, err := s.open(metaBucket, checkKey, v)
			if err != nil || string(got) != checkValue {
				return fmt.Errorf("filestore: key file %s is not the one store file %s was written with; "+
					"use the original key file (its values cannot be read without it), or move the store file aside to start empty",
					keyFile, s.path)
			}
			return nil
		}
		return b.Put([]byte(checkKey), s.seal(metaBucket, checkKey, []byte(checkValue), time.Time{}))
	})
}

// Get implements store.Backend.
func (s *Store) Get(_ context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckNamespace(ns); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ns))
		if b == nil {
			return notFound("get", ns)
		}
		dk := s.diskKey(ns, key)
		raw := b.Get(dk)
		if raw == nil {
			return notFound("get", ns)
		}
		_, val, exp, err := s.openRecord(ns, dk, raw)
		if err != nil {
			return err
		}
		if !live(exp, s.now()) {
			return notFound("get", ns)
		}
		v = val
		return nil
	})
	return v, s.wrap("get", ns, err)
}

// Put implements store.Backend.
func (s *Store) Put(_ context.Context, ns, key string, value []byte, expires time.Time) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if !expires.IsZero() && !s.now().Before(expires) {
		return s.Delete(context.Background(), ns, key)
	}
	dk := s.diskKey(ns, key)
	sealed := s.sealRecord(ns, dk, key, value, expires)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return err
		}
		return b.Put(dk, sealed)
	})
	return s.wrap("put", ns, err)
}

// Take implements store.Backend. An expired value is deleted and not
// returned; a value that does not open is left in place and reported.
func (s *Store) Take(_ context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckNamespace(ns); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		dk := s.diskKey(ns, key)
		raw := b.Get(dk)
		if raw == nil {
			return nil
		}
		_, val, exp, err := s.openRecord(ns, dk, raw)
		if err != nil {
			return err
		}
		if live(exp, s.now()) {
			v = val
		}
		return b.Delete(dk)
	})
	if err != nil {
		return nil, s.wrap("take", ns, err)
	}
	if v == nil {
		return nil, notFound("take", ns)
	}
	return v, nil
}

// Delete implements store.Backend.
func (s *Store) Delete(_ context.Context, ns, key string) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		return b.Delete(s.diskKey(ns, key))
	})
	return s.wrap("delete", ns, err)
}

// Scan implements store.Backend. It visits keys in byte order. Keys are
// sealed on disk, so it opens every live entry of the namespace to find
// the ones under prefix; they are read in one transaction and fn is called
// after it ends.
func (s *Store) Scan(ctx context.Context, ns, prefix string, fn func(key string, value []byte) error) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	type kv struct {
		k string
		v []byte
	}
	var snap []kv
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		now := s.now()
		return b.ForEach(func(dk, raw []byte) error {
			if exp, ok := expiresOf(raw); ok && !live(exp, now) {
				return nil
			}
			k, v, _, err := s.openRecord(ns, dk, raw)
			if err != nil {
				return err
			}
			if strings.HasPrefix(k, prefix) {
				snap = append(snap, kv{k, v})
			}
			return nil
		})
	})
	if err != nil {
		return s.wrap("scan", ns, err)
	}
	slices.SortFunc(snap, func(a, b kv) int { return strings.Compare(a.k, b.k) })
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

// Lock implements store.Backend within this process, the only one using
// the file.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return nil, s.wrap("lock", "", err)
	}
	return s.locks.Lock(ctx, name, ttl)
}

// Sweep implements store.Sweeper: it deletes expired values in one
// transaction.
func (s *Store) Sweep(context.Context) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		now := s.now()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == metaBucket {
				return nil
			}
			var dead [][]byte
			err := b.ForEach(func(k, raw []byte) error {
				if exp, ok := expiresOf(raw); ok && !live(exp, now) {
					dead = append(dead, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(dead)
			return nil
		})
	})
	if err != nil {
		return 0, s.wrap("sweep", "", err)
	}
	return n, nil
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// Close implements store.Backend: it releases the file for another
// process.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}
