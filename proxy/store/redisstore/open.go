package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

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
