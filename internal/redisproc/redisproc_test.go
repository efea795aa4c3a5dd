package redisproc

import (
	"context"
	"testing"
)

// With the append-only file on, a stopped and restarted server has its
// data back, on the same address: what make load's Redis outage relies on.
func TestRestartKeepsAppendOnlyData(t *testing.T) {
	ctx := context.Background()
	s, err := StartServer(ctx, ServerConfig{Dir: t.TempDir(), AppendOnly: true, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	if _, err := s.Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	if _, err := s.Do(ctx, "PING"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Do(ctx, "GET", "k"); err != nil || got != "v" || s.Addr != addr {
		t.Errorf("after the restart GET k = %q, %v at %s; want v at %s", got, err, s.Addr, addr)
	}
	if _, err := Command(ctx, s.Addr, "", "GET", "k"); err == nil {
		t.Error("the server answered without its password")
	}
}
