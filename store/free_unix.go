//go:build unix

package store

import (
	"path/filepath"
	"syscall"
)

// freeBytes is the space an unprivileged writer has left on path's file
// system.
func freeBytes(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(filepath.Dir(path), &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
