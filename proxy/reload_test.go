package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// heldUpstream answers each request once release is closed, after saying
// it arrived.
type heldUpstream struct {
	arrived chan struct{}
	release chan struct{}
}

func (h *heldUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	h.arrived <- struct{}{}
	<-h.release
	return cannedUpstream{}.RoundTrip(r)
}

// reloadConfig loads src in p's configuration directory.
func reloadConfig(t *testing.T, p *Proxy, src string) *config.Config {
	t.Helper()
	dir := filepath.Dir(p.current().cfg.Path("config.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(dir, "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReloadSwapsRoutesAndKeepsRequests: a reload applies the new routes
// to new requests (a removed route answers unknown_host); a request in
// flight finishes on the route it started on; tokens in the store serve
// the new routes; a setting only a restart applies refuses the reload
// and the running configuration stays.
func TestReloadSwapsRoutesAndKeepsRequests(t *testing.T) {
	up := &heldUpstream{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	p, now := newTestProxySource(t, testConfig("", "", ""), up, nil)
	rt := p.current().routes["mcp.test"]
	key := rt.bindingKey("alice", "", "https://upstream.test/mcp")
	if err := rt.tokens.Put(context.Background(), &upstream.Token{Key: key, AccessToken: "up", Subject: "alice",
		Grant: upstream.Grant{Resource: "https://upstream.test/mcp"}, Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	g := &request.Grant{ID: "g", Route: "mcp.test", Subject: "alice", BindingKey: key, Upstream: "https://upstream.test/mcp"}
	if err := p.putAccessToken("down", &bearer.AccessToken{Grant: g, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	send := func(host string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "https://"+host+"/mcp", strings.NewReader(call("whoami")))
		r.Header.Set("Authorization", "Bearer down")
		return do(p, r)
	}
	inflight := make(chan *httptest.ResponseRecorder)
	go func() { inflight <- send("mcp.test") }()
	<-up.arrived

	// The route gets another host; the old one is gone.
	moved := strings.Replace(testConfig("", "", ""), "https://mcp.test", "https://mcp2.test", 1)
	if err := p.Reload(reloadConfig(t, p, moved)); err != nil {
		t.Fatal(err)
	}
	close(up.release)
	if rec := <-inflight; rec.Code != http.StatusOK {
		t.Errorf("the request in flight during the reload: %d %s", rec.Code, rec.Body)
	}
	if rec := send("mcp.test"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "unknown_host") {
		t.Errorf("the removed route: %d %s", rec.Code, rec.Body)
	}
	if rec := send("mcp2.test"); rec.Code != http.StatusUnauthorized {
		t.Errorf("the new route with another route's token: %d %s", rec.Code, rec.Body)
	}

	if err := p.Reload(reloadConfig(t, p, "storage: {type: file}\n"+moved)); err != nil {
		t.Errorf("writing out the default store is no change: %v", err)
	}
	err := p.Reload(reloadConfig(t, p, "storage: {type: memory}\n"+moved))
	if err == nil || !strings.Contains(err.Error(), "storage changed") {
		t.Errorf("a reload that changes the storage: %v", err)
	}
	// The tracer (and its exporter's connections) live as long as the
	// process: tracing is a setting a restart applies.
	err = p.Reload(reloadConfig(t, p, "tracing: {endpoint: https://otel.test}\n"+moved))
	if err == nil || !strings.Contains(err.Error(), "tracing changed") {
		t.Errorf("a reload that turns tracing on: %v", err)
	}
	if _, ok := p.current().routes["mcp2.test"]; !ok {
		t.Error("the refused reload replaced the running configuration")
	}
}

// TestRestartOnlyStorage: a reload that moves the redis store, to another
// server, another key prefix or other Sentinels, is refused; the same
// storage written again is no change.
func TestRestartOnlyStorage(t *testing.T) {
	sentinel := func(addrs ...string) *config.Config {
		return &config.Config{Storage: config.Storage{Type: config.StorageRedis,
			RedisSentinel: &config.RedisSentinel{MasterName: "mymaster", Addresses: addrs}}}
	}
	url := func(u string) *config.Config {
		return &config.Config{Storage: config.Storage{Type: config.StorageRedis, RedisURL: u}}
	}
	for _, tc := range []struct {
		name          string
		running, next *config.Config
		refused       bool
	}{
		{"the same Sentinels", sentinel("s1:26379", "s2:26379"), sentinel("s1:26379", "s2:26379"), false},
		{"other Sentinels", sentinel("s1:26379", "s2:26379"), sentinel("s3:26379"), true},
		{"from one server to Sentinels", url("redis://r:6379"), sentinel("s1:26379"), true},
		{"another server", url("redis://r:6379"), url("redis://r2:6379"), true},
	} {
		err := restartOnly(tc.running, tc.next)
		if refused := err != nil && strings.Contains(err.Error(), "storage changed"); refused != tc.refused {
			t.Errorf("%s: refused %v, want %v (%v)", tc.name, refused, tc.refused, err)
		}
	}
}
