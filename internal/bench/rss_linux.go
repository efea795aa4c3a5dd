package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// groupRSS is the resident memory, in bytes, of every process in the
// process group pgid (a hop and, for nginx, its workers), from
// /proc/PID/stat (field 5, the group) and /proc/PID/statm (resident pages).
func groupRSS(pgid int) (int64, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, name := range stats {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		fields := bytes.Fields(b[i+1:])
		if i < 0 || len(fields) < 3 || string(fields[2]) != strconv.Itoa(pgid) {
			continue
		}
		m, err := os.ReadFile(filepath.Join(filepath.Dir(name), "statm"))
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
