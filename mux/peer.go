//go:build linux || darwin || freebsd

package mux

import "net"

// peerUID is the uid of the process at the other end of conn, as the
// kernel recorded it at connect (peerCredUID): the peer cannot lie about it.
func peerUID(conn *net.UnixConn) (uint32, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var uid uint32
	var gerr error
	if err := rc.Control(func(fd uintptr) { uid, gerr = peerCredUID(int(fd)) }); err != nil {
		return 0, err
	}
	return uid, gerr
}
