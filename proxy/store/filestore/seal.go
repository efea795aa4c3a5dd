package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	bolterrors "go.etcd.io/bbolt/errors"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// How values are sealed on disk, and the errors the store returns.

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
	if len(raw) < headerLen || raw[0] != formatVersion {
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
