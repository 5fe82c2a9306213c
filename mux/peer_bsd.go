//go:build darwin || freebsd

package mux

import "golang.org/x/sys/unix"

// peerCredUID reads LOCAL_PEERCRED, what getpeereid reads.
func peerCredUID(fd int) (uint32, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
