package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// The move from layout 1 (record names in the clear) to layout 2 (names
// hashed, see names.go), done by Open.
//
// The first replica of this version to open a prefix takes the migration
// lease, moves every layout-1 record of the prefix to its layout-2 name
// and then writes the layout marker; replicas that open meanwhile wait for
// the lease and find the marker. Each record moves in one Lua script
// (moveScript): Redis runs it atomically, so a record is never in both
// places nor in neither, and a second migrator (one whose lease ran out
// under it) finds the record gone and moves nothing twice.

const (
	// layoutMarker names the layout a prefix is in, once its migration
	// is complete.
	layoutMarker = "names hashed v2"
	// migrateLease bounds one migrator's hold on the lease between two
	// batches; it is renewed after each.
	migrateLease = 30 * time.Second
	// migrateWait bounds how long Open waits for another replica's
	// migration.
	migrateWait = 2 * time.Minute
	// migrateBatch is how many keys one SCAN round trip asks for.
	migrateBatch = 500
)

// moveScript moves one layout-1 record: KEYS[1] is its layout-1 name,
// KEYS[2] its layout-2 name; ARGV[1] the layout-1 value as read, ARGV[2]
// the layout-2 value. It moves nothing when the record changed since it
// was read (or another migrator moved it). A layout-2 record already under
// the new name was written by this version, after the old one: it is kept.
// The record keeps its remaining time to live.
var moveScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call("PTTL", KEYS[1])
if redis.call("EXISTS", KEYS[2]) == 0 then
  if ttl > 0 then redis.call("SET", KEYS[2], ARGV[2], "PX", ttl) else redis.call("SET", KEYS[2], ARGV[2]) end
end
redis.call("DEL", KEYS[1])
return 1`)

// renewScript extends a lease only if it still holds this holder's token.
var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// Migration is what Open's migration did.
type Migration struct {
	// Moved counts the layout-1 records moved to hashed names.
	Moved int
	// Left counts layout-1 keys left in place: their values do not open
	// with this store's key (another deployment's, or damaged).
	Left int
}

func (s *Store) layoutKey() string { return s.prefix + ":!meta:layout" }

// migrate moves the prefix's layout-1 records, once per prefix.
func (s *Store) migrate(ctx context.Context) error {
	done, err := s.layoutDone(ctx)
	if err != nil || done {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, migrateWait)
	defer cancel()
	lease := s.leaseName("migrate-names")
	token, err := s.lease(wctx, lease, migrateLease)
	if err != nil {
		return fmt.Errorf("redisstore: prefix %q in %s: waiting for another replica to finish moving the records to hashed names: %w", s.prefix, s.at, err)
	}
	defer s.unlock(lease, token)
	if done, err := s.layoutDone(ctx); err != nil || done {
		return err
	}
	nested, err := s.nestedPrefixes(ctx)
	if err != nil {
		return s.fail("migrate", "", err)
	}
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, globEscape(s.prefix+":")+"*", migrateBatch).Result()
		if err != nil {
			return s.fail("migrate", "", err)
		}
		if err := s.moveBatch(ctx, keys, nested); err != nil {
			return err
		}
		_ = renewScript.Run(ctx, s.rdb, []string{lease}, token, migrateLease.Milliseconds()).Err()
		if next == 0 {
			break
		}
		cursor = next
	}
	if err := s.rdb.Set(ctx, s.layoutKey(), layoutMarker, 0).Err(); err != nil {
		return s.fail("migrate", "", err)
	}
	return nil
}

func (s *Store) layoutDone(ctx context.Context) (bool, error) {
	v, err := s.rdb.Get(ctx, s.layoutKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, s.fail("open", "", err)
	case v != layoutMarker:
		return false, fmt.Errorf("redisstore: prefix %q in %s is in layout %q, which this version does not know (written by a newer mcp-proxy?)", s.prefix, s.at, v)
	}
	return true, nil
}

// nestedPrefixes lists the prefixes of other deployments that start with
// this one's and a colon ("mcp-proxy:staging" under "mcp-proxy"): their
// keys look like this prefix's layout-1 records and must be left alone.
// Every deployment has its sealing marker.
func (s *Store) nestedPrefixes(ctx context.Context) ([]string, error) {
	var out []string
	pattern := globEscape(s.prefix+":") + "*" + globEscape(":!meta:seal")
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, pattern, migrateBatch).Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out = append(out, strings.TrimSuffix(k, ":!meta:seal")+":")
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// moveBatch moves the layout-1 records among keys.
func (s *Store) moveBatch(ctx context.Context, keys []string, nested []string) error {
	type old struct{ name, ns, key string }
	var olds []old
	for _, k := range keys {
		rest := strings.TrimPrefix(k, s.prefix+":")
		ns, key, ok := strings.Cut(rest, ":")
		if !ok || key == "" || store.CheckNamespace(ns) != nil || underAny(k, nested) {
			continue
		}
		olds = append(olds, old{k, ns, key})
	}
	if len(olds) == 0 {
		return nil
	}
	names := make([]string, len(olds))
	for i, o := range olds {
		names[i] = o.name
	}
	vals, err := s.rdb.MGet(ctx, names...).Result()
	if err != nil {
		return s.fail("migrate", "", err)
	}
	pipe := s.rdb.Pipeline()
	var moves []*redis.Cmd
	for i, o := range olds {
		raw, ok := vals[i].(string)
		if !ok {
			continue // expired or moved since SCAN saw it
		}
		v, err := s.decodeV1(o.ns, o.key, []byte(raw))
		if err != nil {
			s.migration.Left++
			continue
		}
		name, hash := s.recordName(o.ns, o.key)
		moves = append(moves, moveScript.Eval(ctx, pipe, []string{o.name, name}, raw, s.encodeRecord(o.ns, hash, o.key, v)))
	}
	if len(moves) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return s.fail("migrate", "", err)
	}
	for _, m := range moves {
		if n, _ := m.Int(); n == 1 {
			s.migration.Moved++
		}
	}
	return nil
}

func underAny(k string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// Migration reports what Open moved to hashed names.
func (s *Store) Migration() Migration { return s.migration }
