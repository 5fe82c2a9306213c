//go:build unix

package transport

import (
	"io"
	"os"
	"syscall"
)

// Stdio prepares one of the host's stdio files for the bridge. A pipe or a
// socket, as an MCP host's stdin and stdout are, gets a descriptor of its
// own in non-blocking mode, registered with the runtime's poller, so that
// reads and writes wait there instead of holding an OS thread in a
// blocking system call that the scheduler must keep checking on; on Linux
// it is then read and written with raw system calls (rawio_linux.go). The
// descriptor is a duplicate because the os package may have registered the
// original already (a pipe inherited in non-blocking mode), and the poller
// takes a descriptor once. A terminal or a file is returned as it is: its
// file description may be shared with the shell.
func Stdio(f *os.File) io.ReadWriter {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	var own *os.File
	rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) != nil {
			return
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFIFO, syscall.S_IFSOCK:
		default:
			return
		}
		// ForkLock keeps a process started meanwhile from inheriting
		// the duplicate before it is marked close-on-exec.
		syscall.ForkLock.RLock()
		dup, err := syscall.Dup(int(fd))
		if err == nil {
			syscall.CloseOnExec(dup)
		}
		syscall.ForkLock.RUnlock()
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(dup, true); err != nil {
			syscall.Close(dup)
			return
		}
		// NewFile sees the non-blocking flag and registers the
		// descriptor with the poller.
		own = os.NewFile(uintptr(dup), f.Name())
	})
	if own == nil {
		return f
	}
	return rawFile(own)
}
