package agentauth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
	"golang.org/x/crypto/ssh"
)

// learn appends key for the target to the first UserKnownHostsFile
// (accept-new) and to the checker's own view of the files, under the
// target's known_hosts name, or under names (the name and its address,
// for CheckHostIP): one "name,address" line, or a hashed line for each.
func (c *HostKeyChecker) learn(key ssh.PublicKey, names ...string) error {
	if len(names) == 0 {
		names = []string{c.name}
	}
	if c.t.HashKnownHosts && len(names) > 1 {
		for _, n := range names {
			if err := c.learn(key, n); err != nil {
				return err
			}
		}
		return nil
	}
	if len(c.t.UserKnownHostsFiles) == 0 {
		return fmt.Errorf("no UserKnownHostsFile to record the host key in")
	}
	file := c.t.UserKnownHostsFiles[0]
	if fi, err := os.Stat(file); err == nil && regularfile.IsDevNull(fi) {
		c.log.Debug("not recording the host key: UserKnownHostsFile is the null device", "file", file)
		return nil
	}
	name := strings.Join(names, ",")
	var salt []byte
	if c.t.HashKnownHosts {
		salt = make([]byte, sha1.Size)
		if _, err := rand.Read(salt); err != nil {
			return err
		}
		name = hashHost(names[0], salt)
	}
	text := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	// Another process may have recorded it since the files were read.
	already := func(data []byte) bool {
		db := &knownHosts{}
		db.read(bytes.NewReader(data), file, &badLines{})
		for _, l := range db.lines {
			if l.marker == "" && keysEqual(l.key, key) && l.matches(names[len(names)-1]) {
				return true
			}
		}
		return false
	}
	n, err := appendKnownHost(file, text, already)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	l, err := parseKnownLine(text)
	if err != nil {
		return err
	}
	l.file, l.line = file, n
	c.mu.Lock()
	c.db.lines = append(cloneLines(c.db.lines), l)
	c.mu.Unlock()
	return nil
}

// cloneLines copies so that readers holding the old slice never see
// the append.
func cloneLines(l []*knownLine) []*knownLine { return append([]*knownLine(nil), l...) }

// appendKnownHost appends one line to file, creating the file (0600) and
// its directory (0700) as needed. An exclusive lock on the file, held
// across the check for a final newline and the write, keeps lines from
// concurrent writers (another m2m-ssh, or ssh itself, which appends with
// O_APPEND) whole. It returns the line number written, 0 when skip
// reports, under the lock, that the file already has what is wanted.
func appendKnownHost(file, text string, skip func(data []byte) bool) (int, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return 0, fmt.Errorf("create known_hosts directory: %w", err)
	}
	// Never append to a pipe or device, nor read /dev/zero without end.
	f, fi, err := regularfile.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open known_hosts: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return 0, fmt.Errorf("lock %s: %w", file, err)
	}
	defer unlock()

	data, err := regularfile.ReadOpen(f, fi, file, maxKnownHostsSize)
	if err != nil {
		return 0, fmt.Errorf("read known_hosts: %w", err)
	}
	if skip != nil && skip(data) {
		return 0, nil
	}
	line := text + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return 0, fmt.Errorf("write %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", file, err)
	}
	return strings.Count(string(data)+line, "\n"), nil
}

var discardLog = slog.New(slog.DiscardHandler)
