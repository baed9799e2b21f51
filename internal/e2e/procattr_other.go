//go:build !linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so Kill reaches
// anything it forks.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
