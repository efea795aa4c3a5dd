package bench

import (
	"os/exec"
	"syscall"
)

// ownProcess makes cmd die with this program, so that a killed `make
// load` or bench leaves nothing behind: the kernel sends it SIGKILL when
// the thread that started it exits (the Go runtime keeps its threads,
// unless a goroutine locked to one exits, which this program never does).
// It also leads a process group of its own, which killProcess ends as a
// whole.
func ownProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killProcess kills cmd's process group: the process and anything it
// started.
func killProcess(cmd *exec.Cmd) error {
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return cmd.Process.Kill()
	}
	return nil
}
