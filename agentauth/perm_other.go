//go:build !unix

package agentauth

import "os"

// checkKeyPermissions only checks that the file exists where Unix modes
// do not apply.
func checkKeyPermissions(path string) error {
	if _, err := os.Stat(path); err != nil {
		return &KeyFileError{Path: path, Reason: "cannot read it", Err: err,
			hint: "check that " + path + " exists and is readable by you"}
	}
	return nil
}
