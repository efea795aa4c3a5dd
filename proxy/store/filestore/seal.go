package filestore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// How keys and values are sealed on disk, and the errors the store returns.

// recordVersion is the format of records; formatVersion (1) is the format
// of the key check, and was the format of records with keys in the clear.
const recordVersion = 2

// nameKey derives the HMAC key of disk keys from the store's key.
func nameKey(storeKey []byte) []byte {
	m := hmac.New(sha256.New, storeKey)
	m.Write([]byte("mcp-proxy filestore: record names"))
	return m.Sum(nil)
}

// diskKey is the bbolt key of ns/key: an HMAC, which reveals neither.
func (s *Store) diskKey(ns, key string) []byte {
	m := hmac.New(sha256.New, s.names)
	m.Write([]byte(ns))
	m.Write([]byte{0})
	m.Write([]byte(key))
	return m.Sum(nil)
}

// sealRecord seals key and value for the disk key dk.
func (s *Store) sealRecord(ns string, dk []byte, key string, value []byte, expires time.Time) []byte {
	plain := make([]byte, 4, 4+len(key)+len(value))
	binary.BigEndian.PutUint32(plain, uint32(len(key)))
	plain = append(append(plain, key...), value...)
	out := make([]byte, headerLen, headerLen+s.sealer.Overhead()+len(plain))
	out[0] = recordVersion
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	binary.BigEndian.PutUint64(out[1:headerLen], uint64(exp))
	return s.sealer.Seal(out, plain, aad(out[:headerLen], ns, string(dk)))
}

// openRecord returns the key, value and expiry of the record stored under
// the disk key dk. The additional data binds it to dk, so a record moved
// under another disk key, or given another expiry, does not open.
func (s *Store) openRecord(ns string, dk, raw []byte) (string, []byte, time.Time, error) {
	if len(raw) < headerLen || raw[0] != recordVersion {
		return "", nil, time.Time{}, fmt.Errorf("filestore: %s: a value in namespace %s has an unknown format (altered, or written by a newer mcp-proxy): %w", s.path, ns, store.ErrUnsealable)
	}
	var expires time.Time
	if exp := int64(binary.BigEndian.Uint64(raw[1:headerLen])); exp != 0 {
		expires = time.Unix(0, exp)
	}
	plain, err := s.sealer.Open(nil, raw[headerLen:], aad(raw[:headerLen], ns, string(dk)))
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("filestore: %s: a value in namespace %s: %w", s.path, ns, err)
	}
	if len(plain) < 4 || int(binary.BigEndian.Uint32(plain)) > len(plain)-4 {
		return "", nil, time.Time{}, fmt.Errorf("filestore: %s: a value in namespace %s is malformed: %w", s.path, ns, store.ErrUnsealable)
	}
	n := int(binary.BigEndian.Uint32(plain))
	key, value := string(plain[4:4+n]), plain[4+n:]
	if value == nil {
		value = []byte{}
	}
	return key, bytes.Clone(value), expires, nil
}

// upgrade rewrites the records of format 1 (keys in the clear) in the
// current format, in one transaction, then compacts the file so that the
// freed pages that held the old keys are gone: nothing is lost, and the
// file no longer shows the keys.
func (s *Store) upgrade(timeout time.Duration) error {
	n, err := s.rewriteFormat1()
	if err != nil || n == 0 {
		return err
	}
	tmp := s.path + ".upgrade"
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return fmt.Errorf("filestore: %s: compacting after the upgrade: %w", s.path, err)
	}
	if err := bolt.Compact(dst, s.db, 0); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("filestore: %s: compacting after the upgrade: %w", s.path, err)
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := s.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("filestore: %s: replacing it with its compacted copy %s: %w", s.path, tmp, err)
	}
	s.db, err = openBolt(s.path, timeout)
	return err
}

// rewriteFormat1 rewrites format 1 records and reports how many there were.
func (s *Store) rewriteFormat1() (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			ns := string(name)
			if ns == metaBucket {
				return nil
			}
			type old struct {
				key   string
				raw   []byte
				value []byte
				exp   time.Time
			}
			var olds []old
			err := b.ForEach(func(k, raw []byte) error {
				if len(raw) == 0 || raw[0] != formatVersion {
					return nil
				}
				v, exp, err := s.open(ns, string(k), raw)
				if err != nil {
					return err
				}
				olds = append(olds, old{key: string(k), raw: raw, value: v, exp: exp})
				return nil
			})
			if err != nil {
				return fmt.Errorf("filestore: %s: upgrading namespace %s: %w", s.path, ns, err)
			}
			n += len(olds)
			for _, o := range olds {
				if err := b.Delete([]byte(o.key)); err != nil {
					return err
				}
				dk := s.diskKey(ns, o.key)
				if err := b.Put(dk, s.sealRecord(ns, dk, o.key, o.value, o.exp)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return n, err
}

func aad(header []byte, ns, key string) []byte {
	a := make([]byte, 0, len(header)+len(ns)+1+len(key))
	a = append(a, header...)
	a = append(a, ns...)
	a = append(a, 0)
	return append(a, key...)
}

func (s *Store) seal(ns, key string, value []byte, expires time.Time) []byte {
	out := make([]byte, headerLen, headerLen+s.sealer.Overhead()+len(value))
	out[0] = formatVersion
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	binary.BigEndian.PutUint64(out[1:headerLen], uint64(exp))
	return s.sealer.Seal(out, value, aad(out[:headerLen], ns, key))
}

// open returns the plaintext and expiry of a stored value. raw is only
// valid inside its transaction; the plaintext is a fresh slice.
func (s *Store) open(ns, key string, raw []byte) ([]byte, time.Time, error) {
	if len(raw) < headerLen || raw[0] != formatVersion {
		return nil, time.Time{}, fmt.Errorf("filestore: %s: a value in namespace %s has an unknown format (altered, or written by a newer mcp-proxy): %w", s.path, ns, store.ErrUnsealable)
	}
	var expires time.Time
	if exp := int64(binary.BigEndian.Uint64(raw[1:headerLen])); exp != 0 {
		expires = time.Unix(0, exp)
	}
	v, err := s.sealer.Open(nil, raw[headerLen:], aad(raw[:headerLen], ns, key))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("filestore: %s: a value in namespace %s: %w", s.path, ns, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, expires, nil
}

func live(expires, now time.Time) bool { return expires.IsZero() || now.Before(expires) }

// expiresOf reads the expiry without opening the value.
func expiresOf(raw []byte) (time.Time, bool) {
	if len(raw) < headerLen || raw[0] != formatVersion && raw[0] != recordVersion {
		return time.Time{}, false
	}
	if exp := int64(binary.BigEndian.Uint64(raw[1:headerLen])); exp != 0 {
		return time.Unix(0, exp), true
	}
	return time.Time{}, true
}

// wrap classifies an error from a transaction: not found and values that
// do not open are returned as they are; anything else (a closed store, a
// full disk, an I/O error) means the storage cannot be used: ErrUnavailable.
func (s *Store) wrap(op, ns string, err error) error {
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnsealable):
		return err
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return fmt.Errorf("filestore: %s %s: %w: the store is closed", op, ns, store.ErrUnavailable)
	default:
		return fmt.Errorf("filestore: %s %s: %s: %w: %w", op, ns, s.path, store.ErrUnavailable, err)
	}
}

func notFound(op, ns string) error {
	return fmt.Errorf("filestore: %s %s: %w", op, ns, store.ErrNotFound)
}
