// Package redistest starts real Redis processes for tests (on 127.0.0.1,
// free ports, temporary directories, stopped when the test ends): one
// redis-server, or a primary with a replica watched by three Sentinels. A
// machine without the binaries fails the test (it does not skip): install
// them with apt-get install -y redis-server redis-sentinel.
package redistest

import (
	"context"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/internal/redisproc"
)

// Server is a running redis-server, without persistence.
type Server struct {
	*redisproc.Server
}

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Stop kills the server and waits for it to exit: every later request to
// it fails. Stopping twice is harmless.
func (s *Server) Stop() { s.Kill() }

// Start starts a redis-server and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := redisproc.StartServer(context.Background(), redisproc.ServerConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	return &Server{srv}
}

// StartSentinelSet starts a primary (with password), its replica and three
// Sentinels that deem the primary down after a second, and stops them in
// t.Cleanup.
func StartSentinelSet(t testing.TB, password string) *redisproc.Set {
	t.Helper()
	st, err := redisproc.StartSet(context.Background(), redisproc.SetConfig{Dir: t.TempDir(), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
