package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawChunk bounds each raw read or write: the goroutine cannot be
// preempted during one, and a garbage collection waits for it.
const rawChunk = 256 << 10

// rawIO reads and writes a non-blocking descriptor with raw system calls
// and waits for it in the runtime's poller. A raw call skips the
// scheduler's system call bookkeeping, which on every wake from idle also
// wakes the runtime's monitor thread and, when a call outlasts its 20 µs
// tick, hands the processor to another thread: two to four extra context
// switches per request and response. A read or write of a non-blocking
// descriptor never blocks, so nothing is lost by keeping the processor.
type rawIO struct {
	rc syscall.RawConn
	// closed stands for the poller's "use of closed file", which the os
	// package reports as os.ErrClosed; nil for a network connection,
	// whose poller error already is net.ErrClosed.
	closed error
}

// wrap turns the poller's error into the one the os package would give.
func (r rawIO) wrap(err error) error {
	if r.closed != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return r.closed
	}
	return err
}

func (r rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(len(p), rawChunk)]
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			r1, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r1), e
			return e != syscall.EAGAIN
		}
	})
	switch {
	case err != nil:
		return 0, r.wrap(err)
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r rawIO) Write(p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			chunk := p[written:min(len(p), written+rawChunk)]
			r1, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
			switch e {
			case 0:
				written += int(r1)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return written, r.wrap(err)
	}
	if errno != 0 {
		return written, errno
	}
	return written, nil
}

// rawConn is a TCP connection read and written with raw system calls.
type rawConn struct {
	net.Conn
	io rawIO
}

func (c *rawConn) Read(p []byte) (int, error)  { return c.io.Read(p) }
func (c *rawConn) Write(p []byte) (int, error) { return c.io.Write(p) }

// fastConn returns c read and written with raw system calls when it is a
// TCP connection (which Go always puts in non-blocking mode), and c
// otherwise.
func fastConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{c, rawIO{rc: rc}}
}

// rawFile returns f, a pipe or socket in non-blocking mode and registered
// with the poller (Stdio), read and written with raw system calls.
func rawFile(f *os.File) io.ReadWriter {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	return rawIO{rc: rc, closed: os.ErrClosed}
}
