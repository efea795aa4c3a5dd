// Command cpuareas divides the CPU profiles of `bench -profile DIR
// -cpu-windows` by the requests they served: for each target and client
// leg (the rounds together), the CPU µs per request of each area of the
// hop (bench.CPUAreas), as a markdown table. It runs `go tool pprof
// -traces` on each profile.
//
//	cpuareas DIR
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cpuareas DIR (the -profile directory of bench -cpu-windows)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "cpuareas:", err)
		os.Exit(1)
	}
}

// series is one target on one client leg, its rounds together.
type series struct {
	requests float64 // served while its profiles ran
	profiled time.Duration
	areas    map[string]time.Duration
	proc     []string // the hop's CPU µs per request from /proc, by window
}

var windowName = regexp.MustCompile(`^cpu-(\w+)-(h\d)-c(\d+)-(.+)-r\d+\.pprof$`)

func run(dir string) error {
	f, err := os.Open(filepath.Join(dir, "windows.tsv"))
	if err != nil {
		return err
	}
	defer f.Close()
	all := map[string]*series{}
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		m := windowName.FindStringSubmatch(p[0])
		if len(p) != 4 || m == nil {
			return fmt.Errorf("windows.tsv: %q is not a window's line", sc.Text())
		}
		n, err1 := strconv.ParseFloat(p[1], 64)
		secs, err2 := strconv.ParseFloat(p[2], 64)
		if err1 != nil || err2 != nil || secs <= 0 {
			return fmt.Errorf("windows.tsv: %q is not a window's line", sc.Text())
		}
		out, err := exec.Command("go", "tool", "pprof", "-traces", filepath.Join(dir, p[0])).Output()
		if err != nil {
			return fmt.Errorf("go tool pprof -traces %s: %w", p[0], err)
		}
		areas, dur, err := bench.ParseTraces(bytes.NewReader(out))
		if err != nil {
			return fmt.Errorf("%s: %w", p[0], err)
		}
		key := fmt.Sprintf("%s %s c=%s %s", m[1], m[2], m[3], m[4])
		s := all[key]
		if s == nil {
			s = &series{areas: map[string]time.Duration{}}
			all[key] = s
			keys = append(keys, key)
		}
		// The profile runs for its own seconds from the window's start: the
		// requests it saw are the window's rate over that time.
		s.requests += n / secs * dur.Seconds()
		s.profiled += dur
		s.proc = append(s.proc, p[3])
		for a, d := range areas {
			s.areas[a] += d
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	slices.Sort(keys)
	var names []string
	for _, a := range bench.CPUAreas {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	names = append(names, "other")
	fmt.Printf("CPU µs per request from the profiles (samples ÷ the requests served while they ran):\n\n| area | %s |\n|---|%s\n",
		strings.Join(keys, " | "), strings.Repeat("---|", len(keys)))
	perReq := func(s *series, d time.Duration) string {
		return fmt.Sprintf("%.1f", float64(d.Microseconds())/s.requests)
	}
	for _, a := range names {
		row := []string{a}
		for _, k := range keys {
			row = append(row, perReq(all[k], all[k].areas[a]))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	row := []string{"**total in the profiles**"}
	procRow := []string{"the hop's CPU µs per request from /proc, by window"}
	reqRow := []string{"requests while profiled"}
	for _, k := range keys {
		var t time.Duration
		for _, d := range all[k].areas {
			t += d
		}
		row = append(row, "**"+perReq(all[k], t)+"**")
		procRow = append(procRow, strings.Join(all[k].proc, ", "))
		reqRow = append(reqRow, fmt.Sprintf("%.0f in %.0fs", all[k].requests, all[k].profiled.Seconds()))
	}
	for _, r := range [][]string{row, procRow, reqRow} {
		fmt.Printf("| %s |\n", strings.Join(r, " | "))
	}
	return nil
}
