// Package redisproc runs real redis-server and redis-sentinel processes on
// 127.0.0.1 for tests and for `make load`: one server, or a primary with a
// replica watched by three Sentinels. Every process is started with the
// death signal of its parent (Linux), so none outlives the program that
// started it, and Close waits until each has exited.
//
// A machine without the binaries is an error, never a skip: apt-get
// install -y redis-server redis-sentinel.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a running redis-server.
type Server struct {
	// Addr is host:port on 127.0.0.1; it stays the same across Restart.
	Addr string
	// Password is the server's requirepass ("" for none).
	Password string

	bin  string
	args []string
	dir  string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// ServerConfig describes a redis-server to start.
type ServerConfig struct {
	// Dir is its working directory (its append-only file, its log).
	// Required.
	Dir string
	// AppendOnly turns the append-only file on (appendfsync everysec),
	// so that a stopped and restarted server has its data back.
	AppendOnly bool
	// ReplicaOf is the host:port of the primary it replicates, if any.
	ReplicaOf string
	// Password is its requirepass, and the masterauth it uses towards its
	// primary (a replica set shares one password).
	Password string
}

// Lookup finds a binary on PATH, with an error that says how to install
// it.
func Lookup(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not on PATH: install it (apt-get install -y %s)", name, name)
	}
	return bin, nil
}

// StartServer starts a redis-server on a free loopback port and waits
// until it answers PING.
func StartServer(ctx context.Context, c ServerConfig) (*Server, error) {
	bin, err := Lookup("redis-server")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	var last error
	// The free port is found by listening and closing; another process
	// may take it before redis-server does, so try a few.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Password: c.Password, bin: bin, dir: c.Dir,
			log: filepath.Join(c.Dir, "redis.log")}
		// A replica that (re)joins syncs at once, not after the default 5 s.
		s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", c.Dir, "--logfile", s.log, "--repl-diskless-sync-delay", "0"}
		if c.AppendOnly {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "everysec")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
		if c.Password != "" {
			s.args = append(s.args, "--requirepass", c.Password, "--masterauth", c.Password)
		}
		if c.ReplicaOf != "" {
			host, p, _ := net.SplitHostPort(c.ReplicaOf)
			s.args = append(s.args, "--replicaof", host, p)
		}
		if last = s.start(ctx); last == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("starting redis-server: %w", last)
}

func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, s.args...)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := waitPing(ctx, s.Addr, s.Password, exited); err != nil {
		s.Kill()
		return fmt.Errorf("redis-server on %s: %w: %s", s.Addr, err, tail(s.log))
	}
	return nil
}

// Stop ends the server the way an operator's `systemctl stop` does
// (SIGTERM: it writes its append-only file and exits) and waits until it
// has exited; after 10 s it kills it. Stopping a stopped server is
// harmless.
func (s *Server) Stop() { s.end(syscall.SIGTERM, 10*time.Second) }

// Kill ends the server at once (SIGKILL), as a crash does, and waits
// until it has exited.
func (s *Server) Kill() { s.end(syscall.SIGKILL, 0) }

func (s *Server) end(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same port, in the same directory
// (with the append-only file on, with the data it had), once it has
// stopped.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// Running reports whether the server's process has not exited.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Do sends one command to the server and returns its reply, flattened to
// text (see Command).
func (s *Server) Do(ctx context.Context, args ...string) (string, error) {
	return Command(ctx, s.Addr, s.Password, args...)
}

// Sentinel is a running redis-sentinel.
type Sentinel struct {
	Addr string

	cmd    *exec.Cmd
	exited chan struct{}
}

// Kill ends the Sentinel and waits until it has exited.
func (s *Sentinel) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Set is a primary and a replica watched by three Sentinels, the smallest
// highly available Redis: a majority of the Sentinels (2) agree that the
// primary is down and promote the replica.
type Set struct {
	// MasterName is the name the Sentinels watch the primary under.
	MasterName string
	// Servers are the primary (first, at the start) and its replica.
	Servers   []*Server
	Sentinels []*Sentinel
}

// SetConfig describes a Set to start.
type SetConfig struct {
	// Dir holds a directory per process. Required.
	Dir string
	// MasterName defaults to "mcp-proxy".
	MasterName string
	// Password is the Redis servers' requirepass (AttachSet takes the
	// primary's); the Sentinels are told it (auth-pass) and have none of
	// their own.
	Password string
	// DownAfter is how long the primary must not answer before a Sentinel
	// deems it down; default 1 s (the Sentinels' default is 30 s).
	DownAfter time.Duration
}

// StartSet starts a Set and waits until the replica is in sync and every
// Sentinel knows the replica and the other two Sentinels.
func StartSet(ctx context.Context, c SetConfig) (*Set, error) {
	dir := filepath.Join(c.Dir, "primary")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	primary, err := StartServer(ctx, ServerConfig{Dir: dir, AppendOnly: true, Password: c.Password})
	if err != nil {
		return nil, err
	}
	st, err := AttachSet(ctx, primary, c)
	if err != nil {
		primary.Kill()
		return nil, err
	}
	return st, nil
}

// AttachSet makes a running server the primary of a Set: it starts a
// replica of it and three Sentinels watching it, as an operator moving a
// single Redis to Sentinel does, and waits as StartSet does. The server's
// data stays; Close stops it with the rest.
func AttachSet(ctx context.Context, primary *Server, c SetConfig) (st *Set, err error) {
	if c.MasterName == "" {
		c.MasterName = "mcp-proxy"
	}
	if c.DownAfter == 0 {
		c.DownAfter = time.Second
	}
	c.Password = primary.Password
	sbin, err := Lookup("redis-sentinel")
	if err != nil {
		return nil, err
	}
	st = &Set{MasterName: c.MasterName, Servers: []*Server{primary}}
	defer func() {
		if err != nil {
			for _, s := range st.Sentinels {
				s.Kill()
			}
			for _, s := range st.Servers[1:] {
				s.Kill()
			}
		}
	}()
	dir := filepath.Join(c.Dir, "replica")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, err
	}
	replica, err := StartServer(ctx, ServerConfig{Dir: dir, AppendOnly: true, Password: c.Password, ReplicaOf: primary.Addr})
	if err != nil {
		return st, err
	}
	st.Servers = append(st.Servers, replica)
	if err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		info, err := replica.Do(ctx, "INFO", "replication")
		return strings.Contains(info, "master_link_status:up"), err
	}); err != nil {
		return st, fmt.Errorf("the replica did not sync with the primary: %w", err)
	}
	for i := range 3 {
		dir := filepath.Join(c.Dir, fmt.Sprintf("sentinel-%d", i+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return st, err
		}
		s, err := startSentinel(ctx, sbin, dir, c, primary.Addr)
		if err != nil {
			return st, err
		}
		st.Sentinels = append(st.Sentinels, s)
	}
	// Sentinels find each other and the replica through the primary;
	// until they have, a failover cannot reach its quorum.
	if err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		for _, s := range st.Sentinels {
			out, err := Command(ctx, s.Addr, "", "SENTINEL", "MASTER", c.MasterName)
			if err != nil {
				return false, err
			}
			f := fields(out)
			if f["num-other-sentinels"] != "2" || f["num-slaves"] != "1" {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return st, fmt.Errorf("the Sentinels did not find each other and the replica: %w", err)
	}
	return st, nil
}

func startSentinel(ctx context.Context, bin, dir string, c SetConfig, primary string) (*Sentinel, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host, pport, _ := net.SplitHostPort(primary)
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "sentinel.log"), c.MasterName, host, pport, c.MasterName, c.DownAfter.Milliseconds(), c.MasterName, c.MasterName)
	if c.Password != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", c.MasterName, c.Password)
	}
	// The Sentinel rewrites its configuration file as it learns.
	file := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, file)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Sentinel{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	if err := waitPing(ctx, s.Addr, "", s.exited); err != nil {
		s.Kill()
		return nil, fmt.Errorf("redis-sentinel on %s: %w: %s", s.Addr, err, tail(filepath.Join(dir, "sentinel.log")))
	}
	return s, nil
}

// SentinelAddrs are the Sentinels' addresses.
func (st *Set) SentinelAddrs() []string {
	out := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// Primary asks the Sentinels which server is the primary now.
func (st *Set) Primary(ctx context.Context) (*Server, error) {
	var last error
	for _, s := range st.Sentinels {
		out, err := Command(ctx, s.Addr, "", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", st.MasterName)
		if err != nil {
			last = err
			continue
		}
		hp := strings.Fields(out)
		if len(hp) != 2 {
			last = fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME answered %q", out)
			continue
		}
		addr := net.JoinHostPort(hp[0], hp[1])
		for _, srv := range st.Servers {
			if srv.Addr == addr {
				return srv, nil
			}
		}
		return nil, fmt.Errorf("the Sentinels name %s as the primary, which is none of the set's servers", addr)
	}
	return nil, fmt.Errorf("no Sentinel answered: %w", last)
}

// WaitPrimary waits (at most limit) until the Sentinels name a primary
// other than old, and it answers as a primary; it returns the new one.
func (st *Set) WaitPrimary(ctx context.Context, old *Server, limit time.Duration) (*Server, error) {
	var cur *Server
	err := waitFor(ctx, limit, func() (bool, error) {
		p, err := st.Primary(ctx)
		if err != nil || p == old {
			return false, nil
		}
		info, err := p.Do(ctx, "INFO", "replication")
		if err != nil || !strings.Contains(info, "role:master") {
			return false, nil
		}
		cur = p
		return true, nil
	})
	return cur, err
}

// WaitReplicated waits (at most limit) until every running server other
// than the primary the Sentinels name replicates it, in sync, and every
// Sentinel sees it so (a replica a Sentinel still deems down cannot be
// promoted).
func (st *Set) WaitReplicated(ctx context.Context, limit time.Duration) error {
	return waitFor(ctx, limit, func() (bool, error) {
		p, err := st.Primary(ctx)
		if err != nil {
			return false, nil
		}
		_, port, _ := net.SplitHostPort(p.Addr)
		var replicas []string
		for _, srv := range st.Servers {
			if srv == p || !srv.Running() {
				continue
			}
			info, err := srv.Do(ctx, "INFO", "replication")
			if err != nil || !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_port:"+port+"\r") {
				return false, nil
			}
			replicas = append(replicas, srv.Addr)
		}
		for _, s := range st.Sentinels {
			out, err := Command(ctx, s.Addr, "", "SENTINEL", "REPLICAS", st.MasterName)
			if err != nil {
				return false, nil
			}
			good := map[string]bool{}
			for _, r := range records(out) {
				if r["flags"] == "slave" && r["master-link-status"] == "ok" {
					good[net.JoinHostPort(r["ip"], r["port"])] = true
				}
			}
			for _, a := range replicas {
				if !good[a] {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// records reads a flattened list of key/value records (SENTINEL
// REPLICAS), each starting with its "name".
func records(out string) []map[string]string {
	f := strings.Split(out, "\n")
	var recs []map[string]string
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] == "name" || len(recs) == 0 {
			recs = append(recs, map[string]string{})
		}
		recs[len(recs)-1][f[i]] = f[i+1]
	}
	return recs
}

// Rejoin starts srv again (after a crash, say) as the replica of the
// primary the Sentinels name now, as a server whose configuration the
// Sentinels rewrote would start; without this the Sentinels convert it
// only after about 15 s.
func (st *Set) Rejoin(ctx context.Context, srv *Server) error {
	p, err := st.Primary(ctx)
	if err != nil {
		return err
	}
	srv.Stop()
	args := slices.Clone(srv.args)
	if i := slices.Index(args, "--replicaof"); i >= 0 {
		args = slices.Delete(args, i, i+3)
	}
	host, port, _ := net.SplitHostPort(p.Addr)
	srv.args = append(args, "--replicaof", host, port)
	return srv.start(ctx)
}

// Failover asks a Sentinel to fail the primary over to the replica now
// (SENTINEL FAILOVER, no agreement needed), and waits until the replica
// answers as the primary.
func (st *Set) Failover(ctx context.Context) (*Server, error) {
	old, err := st.Primary(ctx)
	if err != nil {
		return nil, err
	}
	// A Sentinel answers INPROG while an earlier failover is still being
	// completed (its replicas reconfigured), which on a busy machine can
	// outlast the promotion the caller waited for: ask again until it is
	// done. Any other refusal is the caller's error.
	var refused error
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		_, err := Command(ctx, st.Sentinels[0].Addr, "", "SENTINEL", "FAILOVER", st.MasterName)
		if err != nil && strings.HasPrefix(err.Error(), "INPROG") {
			return false, err
		}
		refused = err
		return true, nil
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, err
	}
	return st.WaitPrimary(ctx, old, 30*time.Second)
}

// Close kills every process of the set and waits until each has exited.
func (st *Set) Close() {
	for _, s := range st.Sentinels {
		s.Kill()
	}
	for _, s := range st.Servers {
		s.Kill()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitPing waits (at most 10 s) until addr answers PING, or the process
// exits.
func waitPing(ctx context.Context, addr, password string, exited <-chan struct{}) error {
	return waitFor(ctx, 10*time.Second, func() (bool, error) {
		select {
		case <-exited:
			return false, errors.New("it exited")
		default:
		}
		out, err := Command(ctx, addr, password, "PING")
		return err == nil && out == "PONG", nil
	})
}

// waitFor calls ok every 50 ms until it reports true, fails, or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := ok()
		switch {
		case err != nil && time.Now().After(deadline):
			return err
		case done:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Command sends one command (after AUTH with password, when set) in the
// Redis protocol and returns its reply as text: a simple or bulk string
// as it is, an integer in decimal, an array as its elements on lines of
// their own (nested arrays flattened). An error reply is an error.
func Command(ctx context.Context, addr, password string, args ...string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	send := func(args ...string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			return "", err
		}
		var lines []string
		if err := readReply(r, &lines); err != nil {
			return "", err
		}
		return strings.Join(lines, "\n"), nil
	}
	if password != "" {
		if _, err := send("AUTH", password); err != nil {
			return "", err
		}
	}
	return send(args...)
}

func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return err // a nil bulk string adds nothing
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown reply %q", line)
	}
	return nil
}

// fields reads a flattened key/value reply (SENTINEL MASTER) into a map.
func fields(out string) map[string]string {
	f := strings.Split(out, "\n")
	m := map[string]string{}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
