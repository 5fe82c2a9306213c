//go:build !unix

package agentauth

import "os"

// lockFile is a no-op where flock is missing; O_APPEND still keeps each
// single write whole.
func lockFile(f *os.File) (unlock func(), err error) { return func() {}, nil }
