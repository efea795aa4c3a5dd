// Package redisstore is the store for several proxy replicas: they share
// tokens through one Redis (6.2 or newer), and the refresh lock is a lease
// in Redis, so exactly one replica refreshes a token.
//
// Layout: a record lives at "<prefix>:<ns>#<hash>" with Redis's own expiry
// (PX), where hash is the hex HMAC-SHA256 of ns and the record's key: Redis
// shows which namespaces hold how many records, never whose they are or
// which client or remote server they name. The HMAC key is derived from
// Options.Key, so every replica with the same key file computes the same
// names; without a key, names are hashed under a fixed key (every replica
// agrees, and the values, in the clear then, hold their keys anyway). The
// value holds the record's key beside its value, so Scan, which cannot
// narrow a prefix of hashed names, reads a namespace's records and keeps
// those whose keys start with the prefix, as the file store does. A lease
// lives at "<prefix>:!lock:<hash of its name>"; markers at
// "<prefix>:!meta:seal" (how values are sealed) and "<prefix>:!meta:layout"
// ('!' and '#' cannot appear in a namespace, so none collides with a
// record). Records of the earlier layout, "<prefix>:<ns>:<key>" with the
// key in the clear, are moved to their hashed names by the first replica
// that opens the prefix (see migrate.go).
//
// Sealing: with Options.Key set (every replica must have the same key
// file), keys and values are sealed with AES-256-GCM, with ns and the name
// hash as additional data, so a value copied under another name does not
// open; Redis, its dumps and its replication stream then never hold a
// token in the clear. Without a key, values are stored as given, for a
// Redis that is itself trusted with secrets. The marker makes the choice
// stick: Open refuses a key that differs from the one the prefix was first
// used with, and refuses to mix sealed and unsealed replicas.
//
// Leases (Lock): SET name token NX PX ttl, retried with capped, jittered
// exponential backoff (2ms doubling to 100ms) until it succeeds or the
// context is done. unlock deletes the lease with a Lua compare-and-delete
// on the random token, so a replica whose lease expired cannot release the
// lease another replica took since. A lease is only as safe as its ttl:
// the holder must finish well within it (the proxy's refresh is bounded by
// its HTTP timeout).
//
// Every failure to use Redis (refused connection, timeout, a server error,
// a closed client) wraps store.ErrUnavailable, so the proxy answers 503.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "mcp-proxy"

const (
	markerPlain  = "plain v1"
	markerSealed = "mcp-proxy redisstore: this value opens with the right key"
)

// Options configure Open. The zero value of each field is its default.
type Options struct {
	// Prefix starts every key this store writes, so several deployments
	// can share one Redis. Empty means DefaultPrefix.
	Prefix string
	// Key, when set, seals values with AES-256-GCM (store.KeySize bytes,
	// from store.LoadKeyFile). Every replica sharing the prefix needs the
	// same key. Nil stores values unsealed.
	Key []byte
	// Now converts absolute expiry times to Redis's relative PX. Nil means
	// time.Now.
	Now func() time.Time
}

// Store is a store.Backend in Redis.
type Store struct {
	rdb    *redis.Client
	at     string // "Redis at host:port", for errors; never the URL (it may hold a password)
	hint   string // what to check when Redis does not answer
	prefix string
	sealer *store.Sealer
	names  []byte // the HMAC key of record names
	now    func() time.Time

	migration Migration

	closeOnce sync.Once
}

var _ store.Backend = (*Store)(nil)

// fail wraps an error from Redis: every one means the storage cannot be
// used as it should.
func (s *Store) fail(op, ns string, err error) error {
	if ns != "" {
		op += " " + ns
	}
	return fmt.Errorf("redisstore: %s: %s: %w: %w", op, s.at, store.ErrUnavailable, err)
}

func notFound(op, ns string) error {
	return fmt.Errorf("redisstore: %s %s: %w", op, ns, store.ErrNotFound)
}

// Get implements store.Backend.
func (s *Store) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckNamespace(ns); err != nil {
		return nil, err
	}
	name, hash := s.recordName(ns, key)
	raw, err := s.rdb.Get(ctx, name).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, notFound("get", ns)
	case err != nil:
		return nil, s.fail("get", ns, err)
	}
	return s.record(ns, key, hash, raw)
}

// Put implements store.Backend.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	if err := store.CheckKey(key); err != nil {
		return err
	}
	var ttl time.Duration
	if !expires.IsZero() {
		ttl = expires.Sub(s.now())
		if ttl <= 0 {
			return s.Delete(ctx, ns, key)
		}
		// PX counts milliseconds; round up so a value never expires early.
		ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	}
	name, hash := s.recordName(ns, key)
	if err := s.rdb.Set(ctx, name, s.encodeRecord(ns, hash, key, value), ttl).Err(); err != nil {
		return s.fail("put", ns, err)
	}
	return nil
}

// Take implements store.Backend with GETDEL: of concurrent Takes across all
// replicas, Redis gives the value to exactly one. A value that does not
// open is consumed all the same (it cannot be put back atomically); Open's
// marker check keeps a replica with the wrong key from starting.
func (s *Store) Take(ctx context.Context, ns, key string) ([]byte, error) {
	if err := store.CheckNamespace(ns); err != nil {
		return nil, err
	}
	name, hash := s.recordName(ns, key)
	raw, err := s.rdb.GetDel(ctx, name).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, notFound("take", ns)
	case err != nil:
		return nil, s.fail("take", ns, err)
	}
	return s.record(ns, key, hash, raw)
}

// Delete implements store.Backend.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	name, _ := s.recordName(ns, key)
	if err := s.rdb.Del(ctx, name).Err(); err != nil {
		return s.fail("delete", ns, err)
	}
	return nil
}

// globEscape makes s match only itself in a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Scan implements store.Backend. Names are hashed, so a prefix cannot
// narrow the SCAN: it reads every record of the namespace (SCAN MATCH on
// the namespace, MGET, 100 keys a round trip), opens each, and calls fn
// for those whose keys start with prefix. Its cost grows with the
// namespace, not with what it finds; the proxy scans on a user's
// connections page and when counting registrations, never on the request
// path. Redis may return a key twice during a scan; Scan visits it once.
func (s *Store) Scan(ctx context.Context, ns, prefix string, fn func(key string, value []byte) error) error {
	if err := store.CheckNamespace(ns); err != nil {
		return err
	}
	base := s.nsBase(ns)
	pattern := globEscape(base) + "*"
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		names, next, err := s.rdb.Scan(ctx, cursor, pattern, 100).Result()
		if err != nil {
			return s.fail("scan", ns, err)
		}
		fresh := names[:0]
		for _, k := range names {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				fresh = append(fresh, k)
			}
		}
		if len(fresh) > 0 {
			vals, err := s.rdb.MGet(ctx, fresh...).Result()
			if err != nil {
				return s.fail("scan", ns, err)
			}
			for i, v := range vals {
				str, ok := v.(string)
				if !ok { // expired or deleted since SCAN saw it
					continue
				}
				key, val, err := s.decodeRecord(ns, strings.TrimPrefix(fresh[i], base), []byte(str))
				if err != nil {
					return err
				}
				if !strings.HasPrefix(key, prefix) {
					continue
				}
				if err := fn(key, val); err != nil {
					return err
				}
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// SetClientLogger sends the go-redis client's own messages (failed dials,
// pool events) to log, at warn level with event "redis_client", instead of
// the standard logger. It is process-wide, as go-redis's logger is; call it
// once at start.
func SetClientLogger(log *slog.Logger) { redis.SetLogger(clientLogger{log}) }

type clientLogger struct{ log *slog.Logger }

func (l clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), event.RedisClient.Attr())
}

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Close implements store.Backend.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.rdb.Close() })
	return err
}
