package mux

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// serverConn is one control connection a Server serves: its messages in
// order, and at most one session (as OpenSSH's master allows).
type serverConn struct {
	s      *Server
	conn   *net.UnixConn
	r      *fdReader
	log    *slog.Logger
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	wmu  sync.Mutex // the reader loop and the session both write
	sess *serverSession
}

func (c *serverConn) close() {
	c.cancel()
	c.conn.Close()
}

func (c *serverConn) send(b *builder) error {
	msg, err := b.frame()
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.conn.Write(msg)
	return err
}

func (c *serverConn) refuse(typ, id uint32, reason string) error {
	return c.send(newBuilder(typ).u32(id).str(reason))
}

func (c *serverConn) read() (fromClient, error) {
	body, err := readMessage(c.r)
	if err != nil {
		return fromClient{}, err
	}
	return parseFromClient(body)
}

// run serves the connection until the client closes it, breaks the
// protocol, or the session's end closes it.
func (c *serverConn) run() error {
	defer func() {
		c.close()
		c.r.close()
		if c.sess != nil {
			c.sess.abandon()
		}
	}()
	if err := c.send(newBuilder(msgHello).u32(protocolVersion)); err != nil {
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(helloTimeout))
	m, err := c.read()
	if err != nil {
		return err
	}
	if m.Type != msgHello {
		return &ProtocolError{Reason: fmt.Sprintf("a message of type 0x%08x before the hello", m.Type)}
	}
	if m.Version != protocolVersion {
		return &ProtocolError{Reason: fmt.Sprintf("protocol version %d, not %d", m.Version, protocolVersion)}
	}
	c.conn.SetReadDeadline(time.Time{})
	for {
		m, err := c.read()
		if err != nil {
			return err
		}
		if err := c.handle(m); err != nil {
			return err
		}
	}
}

// handle answers one request; an error ends the connection.
func (c *serverConn) handle(m fromClient) error {
	switch m.Type {
	case msgHello:
		return &ProtocolError{Reason: "a second hello"}
	case msgAliveCheck:
		return c.send(newBuilder(msgAlive).u32(m.ID).u32(uint32(os.Getpid())))
	case msgTerminate:
		if c.s.Terminate == nil {
			return c.refuse(msgDenied, m.ID, "this master is not to be ended by request")
		}
		err := c.send(newBuilder(msgOK).u32(m.ID))
		c.log.Info("asked to end by a client")
		c.s.Terminate()
		return err
	case msgNewSession:
		return c.newSession(m)
	case msgNewStdioFwd:
		// Take the two descriptors the client sends, so the stream stays
		// in step, then refuse: the master opens sessions only.
		files, err := c.takeFDs(2)
		if err != nil {
			return err
		}
		closeAll(files)
		c.log.Info("refused a stdio forwarding request")
		return c.refuse(msgDenied, m.ID, "stdio forwarding is not offered by this master")
	case msgOpenFwd:
		c.log.Info("refused a port forwarding request")
		return c.refuse(msgDenied, m.ID, "port forwarding is not offered by this master")
	case msgCloseFwd:
		return c.refuse(msgFailure, m.ID, "no such forwarding")
	case msgProxy:
		c.log.Info("refused a proxy request")
		return c.refuse(msgDenied, m.ID, "proxy mode is not offered by this master")
	case msgStopListening:
		return c.refuse(msgDenied, m.ID, "this master does not stop listening by request")
	default:
		return c.refuse(msgFailure, m.ID, "unsupported request")
	}
}

func (c *serverConn) takeFDs(n int) ([]*os.File, error) {
	c.conn.SetReadDeadline(time.Now().Add(fdTimeout))
	defer c.conn.SetReadDeadline(time.Time{})
	return c.r.takeFDs(n)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// newSession serves MUX_C_NEW_SESSION: the descriptors, a channel, its
// requests, the answer; then the session runs on its own while this
// connection's reader goes on (its end ends the session).
func (c *serverConn) newSession(m fromClient) error {
	files, err := c.takeFDs(3)
	if err != nil {
		c.refuse(msgFailure, m.ID, "did not receive file descriptors")
		return err
	}
	if c.sess != nil {
		closeAll(files)
		return c.refuse(msgFailure, m.ID, "Multiple sessions not supported")
	}
	id, ok := c.s.acquire()
	if !ok {
		closeAll(files)
		c.log.Warn("refused a session", "reason", "too many sessions", "max", MaxSessions)
		return c.refuse(msgFailure, m.ID, fmt.Sprintf("this master runs %d sessions, its most", MaxSessions))
	}
	sess, err := openSession(c, id, m, files)
	if err != nil {
		closeAll(files)
		c.s.release()
		c.log.Info("a session could not be opened", "err", err)
		if c.ctx.Err() != nil {
			return err
		}
		return c.refuse(msgFailure, m.ID, err.Error())
	}
	c.sess = sess
	err = c.send(newBuilder(msgSessionOpened).u32(m.ID).u32(id))
	if err == nil && m.TTY {
		// A tty is not offered: say so, as a master whose server refused
		// one does, so the client leaves raw mode.
		err = c.send(newBuilder(msgTTYAllocFailed).u32(id))
	}
	// Only now: its exit message must come after the answer. When the
	// answer could not be sent, the connection's end abandons it.
	go sess.run()
	return err
}
