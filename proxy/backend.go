package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/filestore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
)

// openBackend opens the store the configuration names.
func openBackend(ctx context.Context, cfg *config.Config, now func() time.Time, log *slog.Logger) (store.Backend, error) {
	switch cfg.StorageType() {
	case config.StorageMemory:
		return store.NewMemoryClock(now), nil
	case config.StorageRedis:
		// The Redis client's own messages (failed dials while Redis is
		// away) become redis_client events in the proxy's log.
		redisstore.SetClientLogger(log)
		var key []byte
		if kf := cfg.StorageKeyFile(); kf != "" {
			k, _, err := store.LoadKeyFile(kf)
			if err != nil {
				return nil, fmt.Errorf("storage.key_file: %w", err)
			}
			key = k
		}
		o := redisstore.Options{Prefix: cfg.Storage.Prefix, Key: key, Now: now}
		var s *redisstore.Store
		var err error
		if sn := cfg.Storage.RedisSentinel; sn != nil {
			s, err = redisstore.OpenSentinel(ctx, redisstore.Sentinel{MasterName: sn.MasterName, Addrs: sn.Addresses,
				Username: sn.Username, Password: sn.Password, SentinelUsername: sn.SentinelUsername, SentinelPassword: sn.SentinelPassword, DB: sn.DB}, o)
		} else {
			s, err = redisstore.Open(ctx, cfg.Storage.RedisURL, o)
		}
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		if m := s.Migration(); m.Moved+m.Left > 0 {
			log.Info("records of the earlier Redis layout moved to hashed key names", event.StoreMigrated.Attr(),
				slog.String("store", "redis"), slog.Int("moved", m.Moved), slog.Int("left", m.Left))
		}
		return s, nil
	default:
		// The directories of the store and its key are the proxy's own:
		// create them, readable by its user only, when they are missing.
		for _, p := range []string{cfg.StoragePath(), cfg.StorageKeyFile()} {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
		s, err := filestore.Open(cfg.StoragePath(), cfg.StorageKeyFile(), now)
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return s, nil
	}
}

// NSKeys holds the secrets every replica must share.
const NSKeys store.Namespace = "keys"

// formKeyLease bounds the wait of a replica that creates the form key.
const formKeyLease = 10 * time.Second

// sharedKey returns the 32-byte secret stored under name, creating it once:
// replicas on one store agree on it (the form-signing key, so that a form
// one replica served is accepted by another).
func sharedKey(ctx context.Context, b store.Backend, name string) ([]byte, error) {
	get := func() ([]byte, error) {
		v, err := b.Get(ctx, string(NSKeys), name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return v, err
	}
	if k, err := get(); err != nil || len(k) == 32 {
		return k, err
	}
	unlock, err := b.Lock(ctx, "keys:"+name, formKeyLease)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k, err := get(); err != nil || len(k) == 32 {
		return k, err
	}
	k := make([]byte, 32)
	if _, err := randRead(k); err != nil {
		return nil, err
	}
	if err := b.Put(ctx, string(NSKeys), name, k, time.Time{}); err != nil {
		return nil, err
	}
	return k, nil
}
