//go:build !unix

package mux

import (
	"context"
	"net"
	"os"
)

// Without descriptor passing and peer credentials there is no safe way to
// ride or be a master: every entry point says so.

func dialSocket(context.Context, string) (*net.UnixConn, error) { return nil, ErrUnsupported }

func listenSocket(string) (*net.UnixListener, error) { return nil, ErrUnsupported }

func checkListen(string) error { return ErrUnsupported }

func sendFD(*net.UnixConn, *os.File) error { return ErrUnsupported }

func peerUID(*net.UnixConn) (uint32, error) { return 0, ErrUnsupported }

type fdReader struct{}

func newFDReader(*net.UnixConn) *fdReader         { return &fdReader{} }
func (*fdReader) Read([]byte) (int, error)        { return 0, ErrUnsupported }
func (*fdReader) takeFDs(int) ([]*os.File, error) { return nil, ErrUnsupported }
func (*fdReader) close()                          {}
