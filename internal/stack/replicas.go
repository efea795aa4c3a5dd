package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"

	"github.com/mcp-proxy/mcp-proxy/internal/redisproc"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// Replicas is what a stack offers for scenarios with several proxy
// replicas sharing one Redis. The in-process stack has it; a scenario that
// needs it is tagged @local.
type Replicas interface {
	// StartRedis starts a Redis server for the run; the proxy's environment
	// then has REDIS_URL pointing at it.
	StartRedis(ctx context.Context) error
	// StopRedis stops the Redis server of StartRedis; RestartRedis starts
	// it again on the same port with the data it had.
	StopRedis(ctx context.Context) error
	RestartRedis(ctx context.Context) error
	// StartRedisSentinel starts a Redis primary with a password, its
	// replica and three Sentinels watching it (real redis-server and
	// redis-sentinel, no stand-in); the proxy's environment then has
	// REDIS_SENTINEL_1 to _3 (their addresses) and REDIS_PASSWORD.
	StartRedisSentinel(ctx context.Context) error
	// FailoverRedis has the Sentinels fail the primary over to its
	// replica, and returns once the replica answers as the primary.
	FailoverRedis(ctx context.Context) error
	// StartReplica starts one more proxy with the same configuration and
	// returns its number (the first proxy is 1).
	StartReplica(ctx context.Context) (int, error)
	// UseReplica sends new connections to mcp.example.com (and the other
	// route hosts) to replica n.
	UseReplica(n int) error
	// ReplicaTransport reaches the stack like Transport, except that the
	// route hosts are always replica n.
	ReplicaTransport(n int) (http.RoundTripper, error)
}

// Files reads the files a proxy writes in its working directory.
type Files interface {
	// ProxyFile returns the content of a file of the proxy's working
	// directory, such as its audit log.
	ProxyFile(name string) ([]byte, error)
}

// AdminReader is a stack whose proxy's admin listener a scenario can read.
type AdminReader interface {
	// AdminURL is the base URL of the running proxy's admin listener.
	AdminURL() string
}

var (
	_ Replicas    = (*Local)(nil)
	_ AdminReader = (*Local)(nil)
)

// RedisURLEnv is the variable the docs' Redis example reads its URL from.
const RedisURLEnv = "REDIS_URL"

// The variables the docs' Sentinel example reads: the Sentinels'
// addresses (REDIS_SENTINEL_1 to _3) and the Redis servers' password.
const (
	RedisSentinelEnvPrefix = "REDIS_SENTINEL_"
	RedisPasswordEnv       = "REDIS_PASSWORD"
)

// PartRedisSentinel is redis-sentinel: always the real one (nothing
// stands in for it), with two real redis-servers.
const PartRedisSentinel = "redis-sentinel"

// StartRedisSentinel implements Replicas.
func (s *Local) StartRedisSentinel(ctx context.Context) error {
	dir := filepath.Join(s.dir, "redis-sentinel")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	password := "redis-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	set, err := redisproc.StartSet(ctx, redisproc.SetConfig{Dir: dir, Password: password})
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	s.mu.Lock()
	s.sentinels = set
	s.mu.Unlock()
	s.redisMu.Lock()
	s.redisEnv = map[string]string{RedisPasswordEnv: password}
	for i, a := range set.SentinelAddrs() {
		s.redisEnv[fmt.Sprintf("%s%d", RedisSentinelEnvPrefix, i+1)] = a
	}
	s.redisMu.Unlock()
	bin, _ := exec.LookPath("redis-sentinel")
	recordPart(PartRedisSentinel, Real, bin+", with two redis-servers (a primary and its replica)")
	return nil
}

// FailoverRedis implements Replicas.
func (s *Local) FailoverRedis(ctx context.Context) error {
	s.mu.Lock()
	set := s.sentinels
	s.mu.Unlock()
	if set == nil {
		return fmt.Errorf("stack: no Redis with Sentinels runs (StartRedisSentinel)")
	}
	if err := set.WaitReplicated(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("stack: the replica is not in sync before the failover: %w", err)
	}
	if _, err := set.Failover(ctx); err != nil {
		return fmt.Errorf("stack: the Sentinels did not fail the primary over: %w", err)
	}
	return nil
}

type replica struct {
	addr netip.AddrPort
	stop context.CancelFunc
	done chan int
}

// StartRedis implements Replicas: a real redis-server on a free loopback
// port, with no persistence, stopped when the stack closes. Without one on
// PATH it embeds a Redis-protocol server (miniredis) in this process on a
// loopback port, so the proxy's Redis store still talks RESP over a socket,
// unless RequireReal named redis-server. Parts says which it was.
func (s *Local) StartRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if realRequired(PartRedis) {
			return fmt.Errorf("stack: redis-server is not on PATH, and this run requires the real one (apt-get install -y redis-server)")
		}
		return s.startEmbeddedRedis()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := filepath.Join(s.dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The append-only file keeps the data across StopRedis and
	// RestartRedis.
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", dir)
	s.redisMu.Lock()
	s.redisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	s.redisMu.Unlock()
	if err := s.runRedis(ctx, cmd, port); err != nil {
		return err
	}
	recordPart(PartRedis, Real, bin)
	return nil
}

// runRedis starts a redis-server command and waits until it accepts
// connections on port.
func (s *Local) runRedis(ctx context.Context, cmd *exec.Cmd, port int) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("stack: start redis-server: %w", err)
	}
	s.mu.Lock()
	s.redis = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("stack: redis-server did not answer on port %d", port)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// StopRedis implements Replicas: the server stops as an operator's stop
// does (SIGTERM), and every connection to it is refused until
// RestartRedis.
func (s *Local) StopRedis(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.redis != nil:
		_ = s.redis.Process.Signal(syscall.SIGTERM)
		_ = s.redis.Wait()
		s.redis = nil
	case s.miniRedis != nil:
		s.miniRedis.m.Close()
	default:
		return fmt.Errorf("stack: no Redis server runs (StartRedis)")
	}
	return nil
}

// RestartRedis implements Replicas: the server starts again on its port,
// with its data.
func (s *Local) RestartRedis(ctx context.Context) error {
	s.mu.Lock()
	mini := s.miniRedis
	s.mu.Unlock()
	if mini != nil {
		return mini.m.Restart()
	}
	s.redisMu.Lock()
	u := s.redisURL
	s.redisMu.Unlock()
	if u == "" {
		return fmt.Errorf("stack: no Redis server ran (StartRedis)")
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(parsed.Port())
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "redis")
	return s.runRedis(ctx, exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", dir), port)
}

// startEmbeddedRedis serves the Redis protocol from this process on a
// loopback port; it listens before it returns, so no wait is needed.
func (s *Local) startEmbeddedRedis() error {
	r, err := StartEmbeddedRedis()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.miniRedis = r
	s.mu.Unlock()
	s.redisMu.Lock()
	s.redisURL = r.URL()
	s.redisMu.Unlock()
	recordPart(PartRedis, Embedded, "miniredis"+miniredisVersion+" in process, RESP on 127.0.0.1; redis-server is not on PATH")
	return nil
}

// EmbeddedRedis is a Redis-protocol server in this process: miniredis on
// a loopback port, its clock kept with the wall clock so that keys expire
// as they would in redis-server (to within a tick).
type EmbeddedRedis struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
}

// embeddedRedisTick is how often the embedded server's clock moves.
const embeddedRedisTick = 50 * time.Millisecond

// StartEmbeddedRedis starts an EmbeddedRedis; Close stops it.
func StartEmbeddedRedis() (*EmbeddedRedis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("stack: start the embedded Redis server: %w", err)
	}
	// The Redis store reads redis_version from INFO server to refuse a
	// server older than 6.2; miniredis serves only other sections. It
	// implements the 7.x commands the store uses (GETDEL, SET NX PX, EVAL),
	// so it answers as 7.2 and names itself.
	m.Server().SetPreHook(func(c *server.Peer, cmd string, args ...string) bool {
		if cmd != "INFO" || len(args) != 1 || !strings.EqualFold(args[0], "server") {
			return false
		}
		c.WriteBulk("# Server\r\nredis_version:7.2.0\r\nredis_mode:standalone\r\nminiredis_version:" + miniredisVersion + "\r\n")
		return true
	})
	r := &EmbeddedRedis{m: m, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(embeddedRedisTick)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return r, nil
}

// URL is the redis:// URL of the server's database 0.
func (r *EmbeddedRedis) URL() string { return "redis://" + r.m.Addr() + "/0" }

// Close stops the server.
func (r *EmbeddedRedis) Close() {
	close(r.stop)
	<-r.done
	r.m.Close()
}

// StartReplica implements Replicas.
func (s *Local) StartReplica(ctx context.Context) (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	cancel, done, err := s.runProxy(ctx, ln, nil)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas = append(s.replicas, &replica{addr: netip.MustParseAddrPort(ln.Addr().String()), stop: cancel, done: done})
	return len(s.replicas) + 1, nil
}

// UseReplica implements Replicas.
func (s *Local) UseReplica(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addr netip.AddrPort
	switch {
	case n == 1:
		addr = s.proxyAddr
	case n >= 2 && n-2 < len(s.replicas):
		addr = s.replicas[n-2].addr
	default:
		return fmt.Errorf("stack: there is no proxy replica %d", n)
	}
	for _, h := range s.routeHosts {
		s.hosts.Set(h, 443, addr)
	}
	s.transport.CloseIdleConnections() // new connections go to the replica
	return nil
}

// ReplicaTransport implements Replicas.
func (s *Local) ReplicaTransport(n int) (http.RoundTripper, error) {
	s.mu.Lock()
	var addr netip.AddrPort
	switch {
	case n == 1:
		addr = s.proxyAddr
	case n >= 2 && n-2 < len(s.replicas):
		addr = s.replicas[n-2].addr
	}
	hosts := append([]string(nil), s.routeHosts...)
	s.mu.Unlock()
	if !addr.IsValid() {
		return nil, fmt.Errorf("stack: there is no proxy replica %d", n)
	}
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(a)
		for _, h := range hosts {
			if h == host {
				return (&net.Dialer{}).DialContext(ctx, network, addr.String())
			}
		}
		return s.hosts.DialContext(ctx, network, a)
	}
	return netguard.NewTransport(dial, netguard.TransportOptions{RootCAs: s.ca.Pool()}), nil
}

// ProxyFile implements Files.
func (s *Local) ProxyFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, filepath.Clean("/"+name)))
}

var _ Files = (*Local)(nil)

// stopExtras stops the replicas and Redis. The caller holds s.mu.
func (s *Local) stopExtras() {
	for _, r := range s.replicas {
		r.stop()
		<-r.done
	}
	s.replicas = nil
	if s.redis != nil {
		_ = s.redis.Process.Kill()
		_ = s.redis.Wait()
		s.redis = nil
	}
	if s.miniRedis != nil {
		s.miniRedis.Close()
		s.miniRedis = nil
	}
	if s.sentinels != nil {
		s.sentinels.Close()
		s.sentinels = nil
	}
}

// Serve adds a server of the caller's under another hostname of the stack
// (benchmarks use it for a baseline hop). It stops with the stack.
func (s *Local) Serve(host string, h http.Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.services[host]; dup {
		return fmt.Errorf("stack: %s is served already", host)
	}
	svc := &service{host: host, newHandler: func() (http.Handler, error) { return h, nil }}
	s.services[host] = svc
	return s.serve(svc)
}
