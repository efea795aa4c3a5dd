package redisstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// How records are named and encoded in Redis (layout 2), and the layout-1
// encoding that the sealing marker and the migration still read.

// Record formats: the first byte of every value of layout 2.
const (
	formatPlainRecord  = 2
	formatSealedRecord = 3
)

// nameSep separates a namespace from a record's name hash. It cannot
// appear in a namespace (store.CheckNamespace), so a layout-2 name is
// never a layout-1 name "<prefix>:<ns>:<key>".
const nameSep = "#"

// namesLabel and plainNamesKey derive the HMAC key of record names: from
// the sealing key when there is one; without one, a fixed public key, so
// names are plain SHA-256-strength hashes that every replica agrees on
// (the values, in the clear then, show the keys anyway).
const (
	namesLabel    = "mcp-proxy redisstore: record names"
	plainNamesKey = "mcp-proxy redisstore: record names without a key file"
)

// nameKey derives the HMAC key of record names from the sealing key (nil:
// none).
func nameKey(sealingKey []byte) []byte {
	if sealingKey == nil {
		return []byte(plainNamesKey)
	}
	m := hmac.New(sha256.New, sealingKey)
	m.Write([]byte(namesLabel))
	return m.Sum(nil)
}

// hashName is the hex HMAC of ns and key: the part of a Redis key that
// stands for the store key, revealing neither.
func (s *Store) hashName(ns, key string) string {
	m := hmac.New(sha256.New, s.names)
	m.Write([]byte(ns))
	m.Write([]byte{0})
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

// nsBase starts the Redis keys of every record of ns.
func (s *Store) nsBase(ns string) string { return s.prefix + ":" + ns + nameSep }

// recordName is the Redis key of ns/key and the hash it ends with.
func (s *Store) recordName(ns, key string) (name, hash string) {
	hash = s.hashName(ns, key)
	return s.nsBase(ns) + hash, hash
}

// leaseName is the Redis key of a lease: its name hashed like a record's,
// so a lease named after a user's token shows neither.
func (s *Store) leaseName(name string) string {
	return s.prefix + ":!lock:" + s.hashName("!lock", name)
}

// encodeRecord is the value of a record: its key and value, sealed (with
// additional data ns and the name hash, so a value copied under another
// name does not open) when the store has a key.
func (s *Store) encodeRecord(ns, hash, key string, value []byte) []byte {
	plain := make([]byte, 4, 4+len(key)+len(value))
	binary.BigEndian.PutUint32(plain, uint32(len(key)))
	plain = append(append(plain, key...), value...)
	if s.sealer == nil {
		return append([]byte{formatPlainRecord}, plain...)
	}
	out := make([]byte, 1, 1+s.sealer.Overhead()+len(plain))
	out[0] = formatSealedRecord
	return s.sealer.Seal(out, plain, []byte(ns+"\x00"+hash))
}

// decodeRecord returns the key and value of a record stored under the
// name hash.
func (s *Store) decodeRecord(ns, hash string, raw []byte) (string, []byte, error) {
	var plain []byte
	switch {
	case len(raw) == 0:
		return "", nil, fmt.Errorf("redisstore: a value in namespace %s is empty: it was not written by mcp-proxy", ns)
	case raw[0] == formatPlainRecord && s.sealer == nil:
		plain = raw[1:]
	case raw[0] == formatSealedRecord && s.sealer != nil:
		var err error
		if plain, err = s.sealer.Open(nil, raw[1:], []byte(ns+"\x00"+hash)); err != nil {
			return "", nil, fmt.Errorf("redisstore: a value in namespace %s: %w", ns, err)
		}
	default:
		return "", nil, fmt.Errorf("redisstore: a value in namespace %s: %w (format %d)", ns, store.ErrUnsealable, raw[0])
	}
	if len(plain) < 4 || int(binary.BigEndian.Uint32(plain)) > len(plain)-4 {
		return "", nil, fmt.Errorf("redisstore: a value in namespace %s is malformed: %w", ns, store.ErrUnsealable)
	}
	n := int(binary.BigEndian.Uint32(plain))
	key, value := string(plain[4:4+n]), plain[4+n:]
	if value == nil {
		value = []byte{}
	}
	return key, value, nil
}

// record decodes the value stored under the name of ns/key, and checks
// that it is that key's: without a sealing key nothing else binds a value
// to its name.
func (s *Store) record(ns, key, hash string, raw []byte) ([]byte, error) {
	k, v, err := s.decodeRecord(ns, hash, raw)
	if err != nil {
		return nil, err
	}
	if k != key {
		return nil, fmt.Errorf("redisstore: a value in namespace %s holds another key than its name says: %w", ns, store.ErrUnsealable)
	}
	return v, nil
}

// Layout 1 (before names were hashed): "<prefix>:<ns>:<key>", the value
// one format byte and the value, sealed with additional data ns+"\x00"+key.
// The sealing marker keeps this encoding.
const (
	formatPlain  = 0
	formatSealed = 1
)

func (s *Store) encodeV1(ns, key string, v []byte) []byte {
	if s.sealer == nil {
		out := make([]byte, 0, 1+len(v))
		return append(append(out, formatPlain), v...)
	}
	out := make([]byte, 1, 1+s.sealer.Overhead()+len(v))
	out[0] = formatSealed
	return s.sealer.Seal(out, v, []byte(ns+"\x00"+key))
}

func (s *Store) decodeV1(ns, key string, raw []byte) ([]byte, error) {
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("redisstore: a value in namespace %s is empty: it was not written by mcp-proxy", ns)
	case raw[0] == formatPlain && s.sealer == nil:
		return raw[1:], nil
	case raw[0] == formatSealed && s.sealer != nil:
		v, err := s.sealer.Open(nil, raw[1:], []byte(ns+"\x00"+key))
		if err != nil {
			return nil, fmt.Errorf("redisstore: a value in namespace %s: %w", ns, err)
		}
		if v == nil {
			v = []byte{}
		}
		return v, nil
	default:
		return nil, fmt.Errorf("redisstore: a value in namespace %s: %w (format %d)", ns, store.ErrUnsealable, raw[0])
	}
}
