package bench

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// backend answers each connection with its name and closes it.
func backend(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(name + "\n"))
			c.Close()
		}
	}()
	return ln
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// The balancer hands connections to its backends in turn, and to the
// others when one refuses them.
func TestBalancerRoundRobinSkipsADeadBackend(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	t.Cleanup(func() { b.Close() })
	lb, err := StartBalancer([]string{a.Addr().String(), b.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	var got []string
	for range 4 {
		got = append(got, ask(t, lb.Addr()))
	}
	if strings.Join(got, "") != "abab" {
		t.Errorf("four connections went to %v, want a, b, a, b", got)
	}
	a.Close()
	for i := range 3 {
		if got := ask(t, lb.Addr()); got != "b" {
			t.Errorf("with a gone, connection %d went to %q, want b", i, got)
		}
	}
	if c := lb.Connections(); c[0] != 2 || c[1] != 5 {
		t.Errorf("connections per backend %v, want [2 5]", c)
	}
}
