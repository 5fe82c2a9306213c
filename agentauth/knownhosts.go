package agentauth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"

	"golang.org/x/crypto/ssh"
)

// The known_hosts files are read here rather than with x/crypto's
// knownhosts (or skeema/knownhosts over it) because OpenSSH's rules differ
// from that package's in ways that decide whether a host is trusted: one
// malformed line makes x/crypto reject the whole file where OpenSSH skips
// the line; x/crypto splits patterns at ':' so "[*.lan]:*" or a bare "*"
// never match on a non-22 port, while skeema's workaround lets "*.lan"
// match any port, which OpenSSH does not. Here a pattern list is matched
// against the whole "[host]:port" string, as OpenSSH's match_hostname does.

const (
	markerCA      = "@cert-authority"
	markerRevoked = "@revoked"
)

// knownLine is one key line of a known_hosts file.
type knownLine struct {
	file   string
	line   int
	marker string // "", markerCA or markerRevoked
	// patterns is the host field: a comma-separated pattern list, or a
	// hashed name when salt is set.
	patterns   string
	salt, hash []byte
	key        ssh.PublicKey
	// fromCommand: printed by KnownHostsCommand, not read from a file.
	fromCommand bool
}

func (l *knownLine) known() KnownKey {
	return KnownKey{File: l.file, Line: l.line, Type: l.key.Type(), Fingerprint: ssh.FingerprintSHA256(l.key)}
}

// matches reports whether the line is for host, the known_hosts form of
// the name ("host" or "[host]:port").
func (l *knownLine) matches(host string) bool {
	if l.salt != nil {
		mac := hmac.New(sha1.New, l.salt)
		mac.Write([]byte(host))
		return hmac.Equal(mac.Sum(nil), l.hash)
	}
	return sshcfg.MatchHost(host, l.patterns)
}

// knownHosts is the content of every known_hosts file of a target.
type knownHosts struct {
	lines []*knownLine
	// unread are the files that exist but were refused or could not be
	// read, for the error when no key is known.
	unread []error
}

const (
	// maxKnownHostsSize bounds one known_hosts file: a fleet of 100,000
	// hosts with RSA keys is ~60 MiB; a larger file is a mistake (or
	// /dev/zero behind a link) rather than a list of hosts.
	maxKnownHostsSize = 128 << 20
	// maxKnownHostsLine bounds one line: the longest real lines (an RSA
	// 16384 key, a long pattern list) are a few KiB; a longer line is
	// skipped, as malformed, and the rest of the file still counts.
	maxKnownHostsLine = 1 << 20
	// maxListedBadLines is how many malformed line numbers a file's one
	// summary warning lists.
	maxListedBadLines = 5
)

// badLines counts the malformed lines of one file for its one warning.
type badLines struct {
	count    int
	lines    []int
	firstErr error
}

func (b *badLines) add(n int, err error) {
	if b.count == 0 {
		b.firstErr = err
	}
	b.count++
	if len(b.lines) < maxListedBadLines {
		b.lines = append(b.lines, n)
	}
}

// warn logs the file's malformed lines once: a million of them must not
// become a million log lines.
func (b *badLines) warn(log *slog.Logger, file string) {
	if b.count == 0 {
		return
	}
	nums := make([]string, len(b.lines))
	for i, n := range b.lines {
		nums[i] = strconv.Itoa(n)
	}
	list := strings.Join(nums, ",")
	if b.count > len(b.lines) {
		list += ",..."
	}
	log.Warn("skipping malformed known_hosts lines", "file", file, "count", b.count,
		"lines", list, "first", file+":"+strconv.Itoa(b.lines[0]), "err", b.firstErr)
}

// read adds the lines of one file. A malformed or over-long line is
// skipped, as OpenSSH does; the skipped lines are counted in bad.
func (db *knownHosts) read(r io.Reader, file string, bad *badLines) error {
	return eachLine(r, maxKnownHostsLine, func(n int, text []byte) {
		if text == nil {
			bad.add(n, fmt.Errorf("line longer than %d bytes", maxKnownHostsLine))
			return
		}
		l, err := parseKnownLine(string(text))
		if err != nil {
			bad.add(n, err)
			return
		}
		if l == nil {
			return
		}
		l.file, l.line = file, n
		db.lines = append(db.lines, l)
	})
}

// eachLine calls fn with each line of r, numbered from 1, without its
// newline. A line longer than max is passed as nil and never held whole.
func eachLine(r io.Reader, max int, fn func(n int, text []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than the buffer, up to max
	over := false   // the current line is longer than max
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !over && len(long)+len(chunk) <= max {
				long = append(long, chunk...)
			} else {
				over, long = true, long[:0]
			}
			continue
		}
		if len(chunk) > 0 {
			n++
			text := bytes.TrimSuffix(chunk, []byte("\n"))
			if len(long)+len(text) > max {
				over = true
			} else if len(long) > 0 {
				long = append(long, text...)
				text = long
			}
			if over {
				text = nil
			} else if text == nil {
				text = []byte{}
			}
			fn(n, text)
			long, over = long[:0], false
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parseKnownLine parses a line; nil, nil for blank lines and comments.
// Its errors are cheap values, formatted only if logged: a file may hold
// a million bad lines, and only the first is shown.
func parseKnownLine(text string) (*knownLine, error) {
	var f [4]string // marker, patterns, type, key; the rest is a comment
	n := splitFields(text, f[:])
	if n == 0 || f[0][0] == '#' {
		return nil, nil
	}
	var l knownLine
	fs := f[:n]
	if fs[0][0] == '@' {
		switch fs[0] {
		case markerCA, markerRevoked:
			l.marker = fs[0]
		default:
			return nil, unknownMarkerError(fs[0])
		}
		fs = fs[1:]
	}
	if len(fs) < 3 {
		return nil, errTooFewFields
	}
	l.patterns = fs[0]
	if l.patterns[0] == '|' {
		var err error
		l.salt, l.hash, err = parseHashedHost(l.patterns)
		if err != nil {
			return nil, err
		}
	}
	blob, err := base64.StdEncoding.DecodeString(fs[2])
	if err != nil {
		return nil, keyError{err}
	}
	l.key, err = ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, keyError{err}
	}
	if l.key.Type() != fs[1] {
		return nil, keyTypeError{got: l.key.Type(), line: fs[1]}
	}
	return &l, nil
}

// splitFields puts the first len(f) fields of s, split at spaces and
// tabs as OpenSSH splits them, in f and returns how many it found.
func splitFields(s string, f []string) int {
	n := 0
	for n < len(f) {
		i := 0
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		s = s[i:]
		if s == "" {
			break
		}
		j := 0
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		f[n], s = s[:j], s[j:]
		n++
	}
	return n
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

var errTooFewFields = errors.New("want host patterns, key type and key")

type unknownMarkerError string

func (e unknownMarkerError) Error() string { return fmt.Sprintf("unknown marker %q", string(e)) }

type keyError struct{ err error }

func (e keyError) Error() string { return "key: " + e.err.Error() }
func (e keyError) Unwrap() error { return e.err }

type keyTypeError struct{ got, line string }

func (e keyTypeError) Error() string { return "key type is " + e.got + ", line says " + e.line }

type hashedHostError struct {
	host string
	what string
	err  error
}

func (e hashedHostError) Error() string {
	if e.err != nil {
		return "hashed host " + e.what + ": " + e.err.Error()
	}
	return fmt.Sprintf("unsupported hashed host %q", e.host)
}

func (e hashedHostError) Unwrap() error { return e.err }

// parseHashedHost decodes "|1|salt|hash" (HMAC-SHA1 of the name).
func parseHashedHost(s string) (salt, hash []byte, err error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 || parts[1] != "1" {
		return nil, nil, hashedHostError{host: s}
	}
	if salt, err = base64.StdEncoding.DecodeString(parts[2]); err != nil {
		return nil, nil, hashedHostError{what: "salt", err: err}
	}
	if hash, err = base64.StdEncoding.DecodeString(parts[3]); err != nil {
		return nil, nil, hashedHostError{what: "hash", err: err}
	}
	if len(salt) != sha1.Size || len(hash) != sha1.Size {
		return nil, nil, errHashedLength
	}
	return salt, hash, nil
}

var errHashedLength = errors.New("hashed host: wrong length")

// hashHost returns the "|1|salt|hash" form of name with a fresh salt.
func hashHost(name string, salt []byte) string {
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// loadKnownHosts reads files in order. A missing file is skipped; quiet
// says whether that deserves only a DEBUG line (OpenSSH's default files
// are often absent). A file that is not a regular file is refused, never
// read: a named pipe would block, /dev/zero would never end.
func loadKnownHosts(files []string, quiet func(string) bool, log *slog.Logger) *knownHosts {
	db := &knownHosts{}
	for _, file := range files {
		f, fi, err := regularfile.Open(file)
		if err == nil && fi.Size() > maxKnownHostsSize {
			// Refused whole: a file cut short could hide a @revoked line.
			f.Close()
			err = &regularfile.TooLargeError{Path: file, Limit: maxKnownHostsSize}
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if quiet(file) {
					log.Debug("known_hosts file not found", "file", file)
				} else {
					log.Warn("skipping known_hosts file", "file", file, "err", err)
				}
			} else if regularfile.IsDevNull(fi) {
				log.Debug("known_hosts file is the null device: nothing in it", "file", file)
			} else {
				log.Warn("skipping known_hosts file", "file", file, "err", err)
				db.unread = append(db.unread, err)
			}
			continue
		}
		var bad badLines
		err = db.read(io.LimitReader(f, maxKnownHostsSize), file, &bad)
		f.Close()
		bad.warn(log, file)
		if err != nil {
			log.Warn("reading known_hosts file", "file", file, "err", err)
			db.unread = append(db.unread, fmt.Errorf("%s: %w", file, err))
		}
	}
	return db
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}
