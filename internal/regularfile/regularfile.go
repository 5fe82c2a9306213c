// Package regularfile opens the files a user names (ssh config, known_hosts,
// keys, certificates) so that a named pipe, a device or a directory in
// their place can never block or flood the reader: the file is opened
// without waiting for a writer, the open descriptor is checked, and
// anything but a regular file is refused, as OpenSSH refuses it. Reads
// are bounded by a limit the caller names.
package regularfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// NotRegularError is a path that is a directory, a device, a named pipe
// or a socket rather than a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return e.Path + " is not a regular file (it is " + Kind(e.Mode) + ")"
}

// TooLargeError is a regular file larger than the reader's limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %d bytes", e.Path, e.Limit)
}

// Kind names what a non-regular mode is, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a file"
}

// Open opens path for reading; see OpenFile.
func Open(path string) (*os.File, fs.FileInfo, error) {
	return OpenFile(path, os.O_RDONLY, 0)
}

// OpenFile opens path with flag and perm, never blocking on a named pipe
// or becoming a terminal's controlling process, and returns the file and
// what the open descriptor is. A path that is not a regular file (after
// symbolic links) is closed again and refused with a *NotRegularError.
// The check is on the descriptor, so the file cannot be swapped between
// the check and the read.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|openFlags, perm)
	if err != nil {
		// Opening a named pipe with no reader for writing, or a
		// socket, fails (ENXIO) with a reason that names neither.
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil, fi, &NotRegularError{Path: path, Mode: fi.Mode()}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fi, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return f, fi, nil
}

// Read returns the content of the regular file path, refusing it with a
// *TooLargeError when it holds more than limit bytes (also when it grows
// past the limit while being read).
func Read(path string, limit int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadOpen(f, fi, path, limit)
}

// ReadOpen reads f, opened by Open or OpenFile, from its current offset
// under the same limit as Read.
func ReadOpen(f *os.File, fi fs.FileInfo, path string, limit int64) ([]byte, error) {
	if fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return data, nil
}

// IsDevNull reports whether fi, from Open or OpenFile, is the null
// device: "UserKnownHostsFile /dev/null" is a common way to say "none",
// and reading it can neither block nor flood.
func IsDevNull(fi fs.FileInfo) bool {
	if fi == nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}
