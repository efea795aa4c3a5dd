//go:build !linux

package bench

import (
	"errors"
	"os/exec"
	"time"
)

// ownProcess: only Linux has a parent-death signal.
func ownProcess(*exec.Cmd) {}

func killProcess(cmd *exec.Cmd) error { return cmd.Process.Kill() }

func groupRSS(int) (int64, error) {
	return 0, errors.New("bench: resident memory is read from Linux's /proc")
}

func GroupCPU(int) (time.Duration, error) {
	return 0, errors.New("bench: CPU time is read from Linux's /proc")
}

func group(int) (map[string][]byte, error) {
	return nil, errors.New("bench: processes are read from Linux's /proc")
}
