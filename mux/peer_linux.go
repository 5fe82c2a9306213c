package mux

import "golang.org/x/sys/unix"

// peerCredUID reads SO_PEERCRED.
func peerCredUID(fd int) (uint32, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
