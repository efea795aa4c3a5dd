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
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

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

// unlockScript deletes a lease only if it still holds this holder's token.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Open connects to the Redis at rawURL (redis://[user:password@]host:port[/db]
// or rediss:// for TLS), checks that it answers and is 6.2 or newer, checks
// the sealing marker, and moves records of the earlier layout. It fails
// with an error naming the address (never the password) when Redis cannot
// be reached.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, errors.New("redisstore: the Redis URL must be redis://[user:password@]host:port[/db] or rediss://... for TLS")
	}
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: Redis URL %s: %v", u.Redacted(), err)
	}
	ro.DisableIdentity = true
	// Fail fast when Redis is down: a request waits for one redial and
	// one retry (which covers a pooled connection that a Redis restart
	// closed), not go-redis's default of 5 dials times 4 attempts.
	if ro.MaxRetries == 0 {
		ro.MaxRetries = 1
	}
	ro.DialerRetries = 2
	if ro.DialTimeout == 0 {
		ro.DialTimeout = dialTimeout
	}
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return open(ctx, redis.NewClient(ro), "Redis at "+ro.Addr, "check that it runs and that the URL's address, user and password are right", o)
}

// dialTimeout bounds one connection attempt to Redis (or a Sentinel).
const dialTimeout = 2 * time.Second

// Sentinel names a Redis primary watched by Redis Sentinel, and how to
// sign in to the Sentinels and to the servers they watch.
type Sentinel struct {
	// MasterName is the name the Sentinels watch the primary under.
	MasterName string
	// Addrs are the Sentinels' host:port addresses.
	Addrs []string
	// Username and Password sign in to the Redis servers.
	Username, Password string
	// SentinelUsername and SentinelPassword sign in to the Sentinels.
	SentinelUsername, SentinelPassword string
	// DB is the database number.
	DB int
}

// OpenSentinel is Open for a Redis run with Sentinel: the store asks the
// Sentinels for the primary's address, and when they fail it over to a
// replica, follows the new primary (go-redis's failover client: a new
// connection asks the Sentinels again, and a +switch-master message
// closes the connections to the old primary). While the primary is down
// and until the Sentinels have agreed on a new one, operations fail with
// store.ErrUnavailable, as with a Redis that is down.
func OpenSentinel(ctx context.Context, sn Sentinel, o Options) (*Store, error) {
	if sn.MasterName == "" || len(sn.Addrs) == 0 {
		return nil, errors.New("redisstore: Sentinel: name the primary and at least one Sentinel address")
	}
	fo := &redis.FailoverOptions{
		MasterName: sn.MasterName, SentinelAddrs: sn.Addrs,
		Username: sn.Username, Password: sn.Password,
		SentinelUsername: sn.SentinelUsername, SentinelPassword: sn.SentinelPassword,
		DB: sn.DB, DisableIdentity: true,
		// As for one server (see Open): fail fast, and let the next
		// request find the new primary.
		MaxRetries: 1, DialerRetries: 2, DialTimeout: dialTimeout,
	}
	at := fmt.Sprintf("the Redis primary %q of the Sentinels at %s", sn.MasterName, strings.Join(sn.Addrs, ", "))
	hint := "check that the Sentinels run and watch a primary of that name (SENTINEL GET-MASTER-ADDR-BY-NAME), and that the passwords are right"
	return open(ctx, redis.NewFailoverClient(fo), at, hint, o)
}

// open is what Open and OpenSentinel share, once the client is made.
func open(ctx context.Context, rdb *redis.Client, at, hint string, o Options) (*Store, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, " \t\r\n") {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: prefix %q: use no white space", o.Prefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{rdb: rdb, at: at, hint: hint, prefix: o.Prefix, now: o.Now, names: nameKey(o.Key)}
	if o.Key != nil {
		var err error
		if s.sealer, err = store.NewSealer(o.Key); err != nil {
			s.rdb.Close()
			return nil, fmt.Errorf("redisstore: %w", err)
		}
	}
	for _, step := range []func(context.Context) error{s.checkServer, s.checkMarker, s.migrate} {
		if err := step(ctx); err != nil {
			s.rdb.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) checkServer(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: %s does not answer: %w: %w; %s", s.at, store.ErrUnavailable, err, s.hint)
	}
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redisstore: %s: INFO server: %w: %w", s.at, store.ErrUnavailable, err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(v, ".", 3)
		major, _ := strconv.Atoi(parts[0])
		minor := 0
		if len(parts) > 1 {
			minor, _ = strconv.Atoi(parts[1])
		}
		if major < 6 || major == 6 && minor < 2 {
			return fmt.Errorf("redisstore: %s is version %s; mcp-proxy needs 6.2 or newer (GETDEL)", s.at, v)
		}
	}
	return nil
}

func (s *Store) checkMarker(ctx context.Context) error {
	k := s.prefix + ":!meta:seal"
	want := s.encodeV1("!meta", "seal", []byte(markerPlain))
	if s.sealer != nil {
		want = s.encodeV1("!meta", "seal", []byte(markerSealed))
	}
	if err := s.rdb.SetNX(ctx, k, want, 0).Err(); err != nil {
		return s.fail("open", "", err)
	}
	got, err := s.rdb.Get(ctx, k).Bytes()
	if err != nil {
		return s.fail("open", "", err)
	}
	switch {
	case len(got) > 0 && got[0] == formatSealed && s.sealer == nil:
		return fmt.Errorf("redisstore: prefix %q in %s holds sealed values: give this replica the key file the others use", s.prefix, s.at)
	case len(got) > 0 && got[0] == formatPlain && s.sealer != nil:
		return fmt.Errorf("redisstore: prefix %q in %s holds unsealed values: give every replica the key file, with a new prefix (the old values are not migrated)", s.prefix, s.at)
	case s.sealer != nil:
		if v, err := s.decodeV1("!meta", "seal", got); err != nil || string(v) != markerSealed {
			return fmt.Errorf("redisstore: prefix %q in %s was written with another key file: give every replica the same key file", s.prefix, s.at)
		}
	}
	return nil
}

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

// Lock implements store.Backend with a lease in Redis, exclusive across
// every replica sharing the prefix.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	if err := store.CheckTTL(ttl); err != nil {
		return nil, err
	}
	k := s.leaseName(name)
	token, err := s.lease(ctx, k, ttl)
	if err != nil {
		return nil, err
	}
	return func() { s.unlock(k, token) }, nil
}

// lease takes the lease at Redis key k for ttl, waiting while another
// holder has it, and returns this holder's token.
func (s *Store) lease(ctx context.Context, k string, ttl time.Duration) (string, error) {
	tok := make([]byte, 16)
	_, _ = crand.Read(tok)
	token := hex.EncodeToString(tok)
	wait := 2 * time.Millisecond
	for {
		ok, err := s.rdb.SetNX(ctx, k, token, ttl).Result()
		switch {
		case err != nil && ctx.Err() != nil:
			return "", fmt.Errorf("redisstore: lock: held by another holder until it unlocks or its ttl passes: %w", ctx.Err())
		case err != nil:
			return "", s.fail("lock", "", err)
		case ok:
			return token, nil
		}
		// Jitter spreads replicas that wait for the same lease.
		d := wait/2 + rand.N(wait)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("redisstore: lock: held by another holder until it unlocks or its ttl passes: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// unlock releases the lease if it is still ours. It runs on its own
// deadline (the caller's context may be done); if Redis cannot be reached,
// the lease expires by its ttl.
func (s *Store) unlock(k, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = unlockScript.Run(ctx, s.rdb, []string{k}, token).Err()
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
