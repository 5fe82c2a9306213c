//go:build !unix

package transport

import (
	"io"
	"os"
)

// Stdio returns f: outside Unix the host's stdio is used as it is.
func Stdio(f *os.File) io.ReadWriter { return f }
