//go:build unix

package transport

import (
	"os"
	"syscall"
)

// socketOwner is the uid that owns path, -1 when there is nothing there.
func socketOwner(path string) int {
	fi, err := os.Lstat(path)
	if err != nil {
		return -1
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
