//go:build !linux

package bench

import "os/exec"

// ownProcess: only Linux has a parent-death signal.
func ownProcess(*exec.Cmd) {}

func killProcess(cmd *exec.Cmd) error { return cmd.Process.Kill() }
