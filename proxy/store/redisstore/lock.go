package redisstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// unlockScript deletes a lease only if it still holds this holder's token.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

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
