package redisproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the process when the program that started it dies
// without stopping it (a killed test binary or load run).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
