package sshtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SSHDConfig describes the sshd a test wants.
type SSHDConfig struct {
	// AuthorizedKeys are authorized_keys lines, options included
	// (command="..." key).
	AuthorizedKeys []string
	// Subsystems maps a subsystem name to its command.
	Subsystems map[string]string
	// Extra are further sshd_config lines (TrustedUserCAKeys, ...).
	Extra []string
	// Settings are sshd_config lines put before the defaults, which
	// they override: sshd takes the first value of a keyword
	// (PasswordAuthentication yes, UsePAM yes, ...).
	Settings []string
	// HostKeyTypes are the host key types to generate; ed25519 when empty.
	HostKeyTypes []string
	// LoginUser is the user the tests log in as; the current one when
	// empty. sshd reads authorized_keys as that user, so it is then
	// written where anyone can read it; what the user's commands run
	// must be reachable by it too (UserDir).
	LoginUser string
}

// SSHD is a running OpenSSH server on 127.0.0.1.
type SSHD struct {
	Host string // 127.0.0.1
	Port int
	User string // the user the tests log in as: SSHDConfig.LoginUser, or the current one
	Dir  string // config, host keys, authorized_keys
	// HostKeys are the host public key lines, one per type, in the order
	// of SSHDConfig.HostKeyTypes.
	HostKeys []string
	// HostKeyFiles are the host private key files, same order.
	HostKeyFiles []string

	cmd *exec.Cmd
	log *Buffer
}

// Addr is host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// KnownHosts returns known_hosts lines for every host key of the server,
// under the name [127.0.0.1]:port.
func (s *SSHD) KnownHosts() []string {
	var lines []string
	for _, k := range s.HostKeys {
		lines = append(lines, fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, k))
	}
	return lines
}

// Log returns what sshd has logged so far, for failure messages.
func (s *SSHD) Log() string { return s.log.String() }

// logBound bounds the wait for a line sshd has logged to be copied from
// its stderr: the copy lags at most a scheduling delay of a loaded machine.
const logBound = 30 * time.Second

// WaitLog waits for sshd to have logged want, and fails the test if it
// does not within logBound. A test that checks sshd's log waits here: the
// test reads a copy of sshd's stderr, which may lag behind the client's
// view of what sshd did.
func (s *SSHD) WaitLog(t testing.TB, want string) {
	t.Helper()
	if !s.log.WaitFor(want, logBound) {
		t.Fatalf("sshd did not log %q within %s:\n%s", want, logBound, s.Log())
	}
}

// Stop ends sshd. Sessions already open end with their clients.
func (s *SSHD) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// StartSSHD starts sshd on a free port of 127.0.0.1 and stops it when the
// test ends.
func StartSSHD(t testing.TB, c SSHDConfig) *SSHD {
	t.Helper()
	sshd := LookPath(t, "sshd")
	ensurePrivsepDir(t)
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &SSHD{Host: "127.0.0.1", User: u.Username, Dir: dir}
	keysDir := dir
	if c.LoginUser != "" && c.LoginUser != u.Username {
		s.User = c.LoginUser
		keysDir = sharedDir(t, "m2m-ssh-keys")
	}
	types := c.HostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	for _, typ := range types {
		k := Keygen(t, dir, "ssh_host_"+typ+"_key", KeyOptions{Type: typ, Comment: "host"})
		s.HostKeys = append(s.HostKeys, stripComment(k.Public))
		s.HostKeyFiles = append(s.HostKeyFiles, k.Path)
	}
	keys := WriteFile(t, keysDir, "authorized_keys", c.AuthorizedKeys...)
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}

	// The port is picked by the kernel and handed to sshd; another
	// process may take it in between, so a failed bind is retried.
	for attempt := 0; ; attempt++ {
		s.Port = freePort(t)
		cfg := s.config(c, keys)
		cfgPath := WriteFile(t, dir, "sshd_config", cfg...)
		s.log = &Buffer{}
		cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		s.cmd = cmd
		ready := waitListening(stderr, s.log)
		if ready {
			t.Cleanup(s.Stop)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("sshd log:\n%s", s.Log())
				}
			})
			return s
		}
		cmd.Wait()
		if attempt < 3 && strings.Contains(s.log.String(), "Address already in use") {
			continue
		}
		t.Fatalf("sshd did not start:\n%s", s.log.String())
	}
}

func (s *SSHD) config(c SSHDConfig, authorizedKeys string) []string {
	lines := []string{
		"ListenAddress " + s.Addr(),
		"PidFile none",
		"AuthorizedKeysFile " + authorizedKeys,
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin yes",
		"AllowAgentForwarding yes",
		"AllowTcpForwarding yes",
		"AcceptEnv M2M_*",
		"MaxStartups 200",
		"MaxSessions 100",
		"LogLevel VERBOSE",
	}
	lines = append(append([]string(nil), c.Settings...), lines...)
	for _, k := range s.HostKeyFiles {
		lines = append(lines, "HostKey "+k)
	}
	for name, cmd := range c.Subsystems {
		lines = append(lines, "Subsystem "+name+" "+cmd)
	}
	return append(lines, c.Extra...)
}

// waitListening reads sshd's log until it says it listens, or exits. It
// keeps copying the log in the background afterwards.
func waitListening(stderr io.Reader, log *Buffer) bool {
	r := bufio.NewReader(stderr)
	for {
		line, err := r.ReadString('\n')
		log.WriteString(line)
		if strings.Contains(line, "Server listening on") {
			go func() {
				io.Copy(log, r)
			}()
			return true
		}
		if err != nil {
			return false
		}
	}
}

// freePort returns a port on 127.0.0.1 that nothing listens on right now,
// let go for a server to take.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ensurePrivsepDir creates the directory sshd insists on for privilege
// separation; containers that never booted systemd lack it.
func ensurePrivsepDir(t testing.TB) {
	const dir = "/run/sshd"
	if _, err := os.Stat(dir); err == nil || os.Geteuid() != 0 {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create %s for sshd: %v", dir, err)
	}
}

func stripComment(pub string) string {
	f := strings.Fields(pub)
	if len(f) < 2 {
		return pub
	}
	return f[0] + " " + f[1]
}
