//go:build unix

package master

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
)

// maxLog is the size past which a master's log is set aside (as .old)
// when the next master for the same ControlPath starts: enough for days
// of INFO lines, and a DEBUG log cannot fill the disk over weeks.
const maxLog = 8 << 20

// StateDir is where m2m-ssh keeps what outlives one process:
// $XDG_STATE_HOME/m2m-ssh, or ~/.local/state/m2m-ssh. XDG_STATE_HOME is
// taken only when absolute, as the XDG spec says.
func StateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "m2m-ssh"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory for the master's log: %w", err)
	}
	return filepath.Join(home, ".local", "state", "m2m-ssh"), nil
}

// LogPath is the log file in stateDir of the master for controlPath: one
// per ControlPath, named by a digest of it (a ControlPath may hold
// anything).
func LogPath(stateDir, controlPath string) string {
	sum := sha256.Sum256([]byte(controlPath))
	return filepath.Join(stateDir, "master-"+hex.EncodeToString(sum[:8])+".log")
}

// OpenLog opens the master's log at path for appending, creating it 0600
// and its directory 0700 (logs name hosts and users), and sets a log over
// maxLog aside first.
func OpenLog(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the directory of the master's log: %w", err)
	}
	if err := privateDir(dir); err != nil {
		return nil, fmt.Errorf("cannot use %s for the master's log: %w", dir, err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > maxLog {
		if err := os.Rename(path, path+".old"); err != nil {
			return nil, fmt.Errorf("cannot set the master's full log aside: %w", err)
		}
	}
	// O_NOFOLLOW: a symlink in its place must not have the master
	// append to some other file; regularfile: nor a named pipe hold its
	// start for ever.
	f, _, err := regularfile.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the master's log: %w", err)
	}
	err = ownedRegular(f)
	if err == nil {
		err = singleLink(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot use the master's log %s: %w", path, err)
	}
	return f, nil
}

// privateDir checks that dir is a directory of this user's that nobody
// else can write to: in one someone else could change, they could swap
// the log for a link to another of the user's files. (XDG_STATE_HOME
// may name any directory.)
func privateDir(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		return fmt.Errorf("it is not a directory")
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("it is owned by uid %d, not by you (uid %d)", st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("others can write to it (mode %04o); chmod go-w it", st.Mode&0o7777)
	}
	return nil
}

// singleLink checks that the log has no other name: a hard link to
// another of the user's files would have the master append to that file.
func singleLink(f *os.File) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Nlink != 1 {
		return fmt.Errorf("it has %d names (a hard link to another file?)", st.Nlink)
	}
	return nil
}
