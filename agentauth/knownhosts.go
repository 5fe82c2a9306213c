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
	"strings"

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
	return matchPatternList(strings.ToLower(host), strings.ToLower(l.patterns))
}

// knownHosts is the content of every known_hosts file of a target.
type knownHosts struct {
	lines []*knownLine
}

// readKnownHostsFile adds the lines of one file. A malformed line is
// skipped with a warning naming file and line, as OpenSSH does.
func (db *knownHosts) read(r io.Reader, file string, log *slog.Logger) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		l, err := parseKnownLine(sc.Text())
		if err != nil {
			log.Warn("agentauth: skipping malformed known_hosts line", "file", file, "line", n, "err", err)
			continue
		}
		if l == nil {
			continue
		}
		l.file, l.line = file, n
		db.lines = append(db.lines, l)
	}
	return sc.Err()
}

// parseKnownLine parses a line; nil, nil for blank lines and comments.
func parseKnownLine(text string) (*knownLine, error) {
	text = strings.TrimSpace(text)
	if text == "" || text[0] == '#' {
		return nil, nil
	}
	f := strings.Fields(text)
	l := &knownLine{}
	if strings.HasPrefix(f[0], "@") {
		switch f[0] {
		case markerCA, markerRevoked:
			l.marker = f[0]
		default:
			return nil, fmt.Errorf("unknown marker %q", f[0])
		}
		f = f[1:]
	}
	if len(f) < 3 {
		return nil, errors.New("want host patterns, key type and key")
	}
	l.patterns = f[0]
	if strings.HasPrefix(l.patterns, "|") {
		var err error
		l.salt, l.hash, err = parseHashedHost(l.patterns)
		if err != nil {
			return nil, err
		}
	}
	blob, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	l.key, err = ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if l.key.Type() != f[1] {
		return nil, fmt.Errorf("key type is %s, line says %s", l.key.Type(), f[1])
	}
	return l, nil
}

// parseHashedHost decodes "|1|salt|hash" (HMAC-SHA1 of the name).
func parseHashedHost(s string) (salt, hash []byte, err error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 || parts[1] != "1" {
		return nil, nil, fmt.Errorf("unsupported hashed host %q", s)
	}
	if salt, err = base64.StdEncoding.DecodeString(parts[2]); err != nil {
		return nil, nil, fmt.Errorf("hashed host salt: %w", err)
	}
	if hash, err = base64.StdEncoding.DecodeString(parts[3]); err != nil {
		return nil, nil, fmt.Errorf("hashed host hash: %w", err)
	}
	if len(salt) != sha1.Size || len(hash) != sha1.Size {
		return nil, nil, errors.New("hashed host: wrong length")
	}
	return salt, hash, nil
}

// hashHost returns the "|1|salt|hash" form of name with a fresh salt.
func hashHost(name string, salt []byte) string {
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// matchPatternList is OpenSSH's match_pattern_list: a comma-separated list
// of patterns, '!' negating one; a negated match vetoes the list.
func matchPatternList(s, list string) bool {
	matched := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if p == "" || !matchPattern(s, p) {
			continue
		}
		if neg {
			return false
		}
		matched = true
	}
	return matched
}

// matchPattern matches s against a pattern with '*' (any run of
// characters) and '?' (one character), as OpenSSH's match_pattern.
func matchPattern(s, p string) bool {
	// Iterative glob with single backtrack point: linear enough for the
	// short names here and immune to pathological patterns.
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// loadKnownHosts reads files in order. A missing file is skipped; quiet
// says whether that deserves only a DEBUG line (OpenSSH's default files
// are often absent).
func loadKnownHosts(files []string, quiet func(string) bool, log *slog.Logger) *knownHosts {
	db := &knownHosts{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && quiet(file) {
				log.Debug("agentauth: known_hosts file not found", "file", file)
			} else {
				log.Warn("agentauth: skipping known_hosts file", "file", file, "err", err)
			}
			continue
		}
		if err := db.read(f, file, log); err != nil {
			log.Warn("agentauth: reading known_hosts file", "file", file, "err", err)
		}
		f.Close()
	}
	return db
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}
