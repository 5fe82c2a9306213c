//go:build !linux

package transport

import (
	"io"
	"net"
	"os"
)

// fastConn returns c: raw system calls are used on Linux only.
func fastConn(c net.Conn) net.Conn { return c }

// rawFile returns f: raw system calls are used on Linux only.
func rawFile(f *os.File) io.ReadWriter { return f }
