//go:build unix

package master

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
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
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the directory of the master's log: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > maxLog {
		if err := os.Rename(path, path+".old"); err != nil {
			return nil, fmt.Errorf("cannot set the master's full log aside: %w", err)
		}
	}
	// O_NOFOLLOW: a symlink in its place must not have the master
	// append to some other file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the master's log: %w", err)
	}
	if err := ownedRegular(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot use the master's log %s: %w", path, err)
	}
	return f, nil
}
