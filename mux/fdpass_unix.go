//go:build unix

package mux

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// maxQueuedFDs bounds the descriptors a peer may have in flight: a new
// session passes three; a peer that sends more breaks the protocol.
const maxQueuedFDs = 3

// readChunk is how much one read of a control connection takes: a few
// messages, never a whole large one (those are read in pieces).
const readChunk = 4096

// sendFD passes f to the peer as OpenSSH's mm_send_fd does: one byte of
// data carrying one descriptor in an SCM_RIGHTS message, so that a master
// reading them one at a time (as mux.c does) finds each with its byte.
func sendFD(conn *net.UnixConn, f *os.File) error {
	// SyscallConn, not Fd: Fd would put the descriptor in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	cerr := rc.Control(func(fd uintptr) {
		_, _, werr = conn.WriteMsgUnix([]byte{0}, unix.UnixRights(int(fd)), nil)
	})
	runtime.KeepAlive(f)
	if cerr != nil {
		return cerr
	}
	return werr
}

// fdReader reads a control connection's bytes and queues the descriptors
// that arrive with them, as a master must: the three descriptors of a new
// session come after its message, each with one byte of data.
type fdReader struct {
	conn *net.UnixConn
	buf  []byte // read but not yet consumed
	fds  []int  // received, in order, not yet taken
	oob  []byte
}

func newFDReader(conn *net.UnixConn) *fdReader {
	return &fdReader{conn: conn, oob: make([]byte, unix.CmsgSpace(4*maxQueuedFDs))}
}

func (r *fdReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *fdReader) fill() error {
	chunk := make([]byte, readChunk)
	n, oobn, flags, _, err := r.conn.ReadMsgUnix(chunk, r.oob)
	n, oobn = max(n, 0), max(oobn, 0) // a failed recvmsg says -1
	if oobn > 0 {
		if qerr := r.queue(r.oob[:oobn]); qerr != nil {
			return qerr
		}
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return &ProtocolError{Reason: fmt.Sprintf("more than %d descriptors passed at once", maxQueuedFDs)}
	}
	if n == 0 && err == nil {
		// recvmsg's 0 on a stream socket is the end; ReadMsgUnix says
		// nothing more.
		return io.EOF
	}
	r.buf = chunk[:n]
	if n > 0 {
		return nil
	}
	return err
}

// queue takes the descriptors out of control messages. Every one is
// either queued or closed here, whatever else the messages hold.
func (r *fdReader) queue(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return &ProtocolError{Reason: "an unreadable control message"}
	}
	var bad error
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // credentials or the like: nothing to close
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			if len(r.fds) >= maxQueuedFDs || bad != nil {
				unix.Close(fd)
				bad = &ProtocolError{Reason: fmt.Sprintf("more than %d descriptors passed", maxQueuedFDs)}
				continue
			}
			r.fds = append(r.fds, fd)
		}
	}
	return bad
}

// takeFDs consumes the n one-byte messages that carry n descriptors and
// returns the descriptors as files, set non-blocking (as OpenSSH's master
// sets its session's descriptors) so that closing one ends a blocked read.
func (r *fdReader) takeFDs(n int) ([]*os.File, error) {
	one := make([]byte, 1)
	for range n {
		if _, err := r.Read(one); err != nil {
			return nil, err
		}
	}
	if len(r.fds) < n {
		return nil, &ProtocolError{Reason: fmt.Sprintf("%d of %d descriptors received", len(r.fds), n)}
	}
	files := make([]*os.File, n)
	for i, fd := range r.fds[:n] {
		unix.SetNonblock(fd, true)
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("passed descriptor %d", i))
	}
	r.fds = append(r.fds[:0], r.fds[n:]...)
	return files, nil
}

// close closes the descriptors received and not taken.
func (r *fdReader) close() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
