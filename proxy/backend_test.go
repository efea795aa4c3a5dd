package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore/redistest"
)

// syncBuffer is a log destination that the Redis client's goroutines and
// the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While Redis is away, what the Redis client reports (its failed dials)
// reaches the proxy's log as the documented redis_client event, not the
// client library's own lines on stderr.
func TestRedisClientMessagesReachTheLog(t *testing.T) {
	srv := redistest.Start(t)
	var out syncBuffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	cfg := &config.Config{Storage: config.Storage{Type: config.StorageRedis, RedisURL: srv.URL()}}
	b, err := openBackend(context.Background(), cfg, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv.Stop()
	for range 3 {
		_, _ = b.Get(context.Background(), "sessions", "k")
	}
	if got := out.String(); !strings.Contains(got, `"event":"redis_client"`) || !strings.Contains(got, `"level":"WARN"`) {
		t.Errorf("the proxy's log with Redis stopped:\n%s\nwant redis_client warnings", got)
	}
}
