//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive lock on dir (a devstack.lock file in it),
// held until release or the process's end, however it ends: two devstacks
// must not share one JetStream store, which two embedded servers would
// write at once.
func lockDataDir(dir string) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "devstack.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDataDirInUse
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
