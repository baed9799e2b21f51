package e2e

import "syscall"

// sysProcAttr puts a child in its own process group (so Kill reaches
// anything it forks) and has the kernel kill it if the test binary dies
// without running its cleanups (a test timeout panic, a SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
