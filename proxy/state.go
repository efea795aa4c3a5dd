package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/filestore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
)

// Namespaces of the proxy's records in the store.
const (
	nsSessions      = "sessions"
	nsLogins        = "logins"
	nsRequests      = "requests"
	nsCodes         = "codes"
	nsAccess        = "access"
	nsRefresh       = "refresh"
	nsPending       = "pending"
	nsConsents      = "consents"
	nsUpstream      = "upstream"
	nsRegistrations = "registrations"
)

// hotTTL is how long a replica reuses a record of the request path (an
// access token's grant, an upstream token) that it decoded, before reading
// the store again. Changes made through this replica apply at once;
// changes made through another replica (a disconnect, a refresh) are seen
// within hotTTL.
const hotTTL = 2 * time.Second

// secretKey is the store key of a secret the proxy issued (a token, a
// code, a state, a session id): its SHA-256, so that a copy of the store
// cannot be replayed.
func secretKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// openBackend opens the store the configuration names.
func openBackend(ctx context.Context, cfg *config.Config, now func() time.Time) (store.Backend, error) {
	switch cfg.StorageType() {
	case config.StorageMemory:
		return store.NewMemoryClock(now), nil
	case config.StorageRedis:
		var key []byte
		if kf := cfg.StorageKeyFile(); kf != "" {
			k, _, err := store.LoadKeyFile(kf)
			if err != nil {
				return nil, fmt.Errorf("storage.key_file: %w", err)
			}
			key = k
		}
		s, err := redisstore.Open(ctx, cfg.Storage.RedisURL, redisstore.Options{Prefix: cfg.Storage.Prefix, Key: key, Now: now})
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
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

// state is the proxy's typed view of its store, with a short-lived cache of
// decoded records for the request path.
type state struct {
	b   store.Backend
	now func() time.Time

	mu  sync.Mutex
	hot map[string]hotEntry // ns + "\x00" + key → decoded record
}

type hotEntry struct {
	v     any
	until time.Time
}

// getRecord reads the record under ns/key into a new T; nil when there is
// none.
func getRecord[T any](ctx context.Context, s *state, ns, key string) (*T, error) {
	b, err := s.b.Get(ctx, ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("store: a %s record does not decode: %w", ns, err)
	}
	return &v, nil
}

// takeRecord reads and removes the record (single use).
func takeRecord[T any](ctx context.Context, s *state, ns, key string) (*T, error) {
	b, err := s.b.Take(ctx, ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.forget(ns, key)
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("store: a %s record does not decode: %w", ns, err)
	}
	return &v, nil
}

func (s *state) put(ctx context.Context, ns, key string, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.forget(ns, key)
	return s.b.Put(ctx, ns, key, b, expires)
}

func (s *state) del(ctx context.Context, ns, key string) error {
	s.forget(ns, key)
	return s.b.Delete(ctx, ns, key)
}

// hotRecord is getRecord through the short-lived cache.
func hotRecord[T any](ctx context.Context, s *state, ns, key string) (*T, error) {
	ck := ns + "\x00" + key
	now := s.now()
	s.mu.Lock()
	if e, ok := s.hot[ck]; ok && now.Before(e.until) {
		s.mu.Unlock()
		v, _ := e.v.(*T)
		return v, nil
	}
	s.mu.Unlock()
	v, err := getRecord[T](ctx, s, ns, key)
	if err != nil || v == nil {
		return v, err
	}
	s.mu.Lock()
	if s.hot == nil || len(s.hot) > 100_000 {
		s.hot = make(map[string]hotEntry) // bounded: start over rather than grow
	}
	s.hot[ck] = hotEntry{v: v, until: now.Add(hotTTL)}
	s.mu.Unlock()
	return v, nil
}

func (s *state) forget(ns, key string) {
	s.mu.Lock()
	delete(s.hot, ns+"\x00"+key)
	s.mu.Unlock()
}

// upstreamTokens lists the upstream tokens whose binding keys start with
// prefix.
func (s *state) upstreamTokens(ctx context.Context, prefix string) ([]*store.UpstreamToken, error) {
	var out []*store.UpstreamToken
	err := s.b.Scan(ctx, nsUpstream, prefix, func(_ string, b []byte) error {
		var t store.UpstreamToken
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("store: an upstream token does not decode: %w", err)
		}
		out = append(out, &t)
		return nil
	})
	return out, err
}

// storageError turns a store failure into the error a user sees.
func storageError(err error) *apierror.Error {
	return apierror.Wrap(err, apierror.CodeStorageUnavailable, http.StatusServiceUnavailable,
		"The proxy's token store cannot be reached; nothing was changed. Try again shortly.")
}

// keyEscaper escapes the separator of binding keys, and the escape
// character itself, so that distinct values never make equal keys.
var keyEscaper = strings.NewReplacer("\\", "\\\\", "\x00", "\\0")

// keyPart escapes a value for use inside a binding key.
func keyPart(s string) string { return keyEscaper.Replace(s) }
