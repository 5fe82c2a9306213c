//go:build unix

package agentauth

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkKeyPermissions refuses a private key file that group or others may
// access when it belongs to us, as OpenSSH's sshkey_perm_ok does. st is
// the open regular file's: only then is chmod the fix.
func checkKeyPermissions(path string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	perm := st.Mode().Perm()
	if ok && int(sys.Uid) == os.Geteuid() && perm&0o077 != 0 {
		return &KeyFileError{Path: path, Reason: "UNPROTECTED PRIVATE KEY FILE",
			Err:  fmt.Errorf("permissions %04o are too open: a private key must not be accessible by others, so it is ignored", perm),
			hint: "run 'chmod 600 " + path + "'"}
	}
	return nil
}
