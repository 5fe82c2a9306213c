//go:build !unix

package regularfile

// openFlags is empty where opening a pipe or device does not wait (on
// Windows, a named pipe without a server fails at once).
const openFlags = 0
