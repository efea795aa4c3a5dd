//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildrenDieWithTheLoadBinary: `make load` starts mcp-proxy, the mock
// MCP server and Redis as processes of their own; when the load binary is
// killed (SIGKILL: no deferred cleanup runs), every one of them dies with
// it instead of holding its ports and CPU.
func TestChildrenDieWithTheLoadBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the load binaries")
	}
	bin := t.TempDir()
	// The flags of make load, so that its build is a cache hit after this.
	build := exec.Command("go", "build", "-trimpath", "-o", bin+"/", "github.com/mcp-proxy/mcp-proxy/cmd/mcp-proxy",
		"github.com/mcp-proxy/mcp-proxy/internal/bench/cmd/benchupstream", "github.com/mcp-proxy/mcp-proxy/internal/load/cmd/load")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the load binaries: %v\n%s", err, out)
	}
	var out bytes.Buffer
	load := exec.Command(filepath.Join(bin, "load"), "-bin", bin, "-clients", "4", "-duration", "60s")
	load.Stdout, load.Stderr = &out, &out
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { load.Wait(); close(exited) }()
	t.Cleanup(func() { load.Process.Kill(); <-exited })

	// Wait until it has started mcp-proxy and the mock MCP server.
	var children []int
	deadline := time.Now().Add(60 * time.Second)
	for len(children) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the load binary started %v within 60s, want mcp-proxy and benchupstream; it printed:\n%s", children, out.String())
		}
		select {
		case <-exited:
			t.Fatalf("the load binary exited early:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		children = childrenOf(t, load.Process.Pid)
	}
	names := map[int]string{}
	for _, pid := range children {
		names[pid] = comm(pid)
	}
	if err := load.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited

	deadline = time.Now().Add(10 * time.Second)
	for {
		var alive []string
		for _, pid := range children {
			if running(pid) && comm(pid) == names[pid] {
				alive = append(alive, names[pid]+" ("+strconv.Itoa(pid)+")")
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range children {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("10s after the load binary was killed, its children still run: %s", strings.Join(alive, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := stat(p); ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// stat reads a process's parent and state from /proc/<pid>/stat.
func stat(pid int) (ppid int, state string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, ""
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0]
}

// running reports whether pid is a live process: not gone, and not a
// zombie (dead, waiting for a parent that may never reap it in a
// container).
func running(pid int) bool {
	_, state := stat(pid)
	return state != "" && state != "Z" && state != "X"
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}
