package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// group lists the /proc/PID directories of the processes in process
// group pgid (a hop and, for nginx, its workers) with their stat lines;
// field 5 of a stat line is the group.
func group(pgid int) (map[string][]byte, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range stats {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		if fields := bytes.Fields(b[i+1:]); len(fields) >= 3 && string(fields[2]) == strconv.Itoa(pgid) {
			out[filepath.Dir(name)] = b
		}
	}
	return out, nil
}

// GroupCPU is the CPU time (user plus system) the processes of group
// pgid have used so far.
func GroupCPU(pgid int) (time.Duration, error) {
	procs, err := group(pgid)
	if err != nil {
		return 0, err
	}
	if len(procs) == 0 {
		return 0, fmt.Errorf("bench: no process in group %d", pgid)
	}
	var total time.Duration
	for _, stat := range procs {
		d, err := parseStat(stat)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// groupRSS is the resident memory, in bytes, of the processes in group
// pgid, from /proc/PID/statm (resident pages).
func groupRSS(pgid int) (int64, error) {
	procs, err := group(pgid)
	if err != nil {
		return 0, err
	}
	var total int64
	for dir := range procs {
		m, err := os.ReadFile(filepath.Join(dir, "statm"))
		if err != nil {
			continue
		}
		f := bytes.Fields(m)
		if len(f) < 2 {
			continue
		}
		pages, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		total += pages * int64(os.Getpagesize())
	}
	return total, nil
}
