//go:build linux

package mux_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// ourMaster is this package's Server on a fresh control socket, opening
// its sessions on an x/crypto client connected to a real sshd.
type ourMaster struct {
	path       string
	sshd       *sshtest.SSHD
	relay      *sshtest.Relay // between the master's client and sshd, to cut
	srv        *mux.Server
	l          *mux.Listener
	log        *sshtest.Buffer
	opened     atomic.Int32
	forwarded  atomic.Int32 // sessions ForwardAgent was called for
	terminated chan struct{}
	served     chan error
}

// shortDir is a new 0700 directory with a short path, for a socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "m2m-mx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startOurMaster(t *testing.T) *ourMaster {
	t.Helper()
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_ed25519", sshtest.KeyOptions{})
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{key.Public},
		Subsystems:     map[string]string{"cat": "/bin/cat"},
		Extra:          []string{"AcceptEnv M2M_*"},
	})
	pem, err := os.ReadFile(key.Path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sshd.HostKeys[0]))
	if err != nil {
		t.Fatal(err)
	}
	relay := sshtest.StartRelay(t, sshd.Addr())
	client, err := ssh.Dial("tcp", relay.Addr, &ssh.ClientConfig{
		User:            sshd.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		t.Fatalf("dialling the test sshd: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	m := &ourMaster{path: filepath.Join(shortDir(t), "cm"), sshd: sshd, relay: relay, log: &sshtest.Buffer{}, terminated: make(chan struct{}), served: make(chan error, 1)}
	m.l, err = mux.Listen(m.path)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	var once sync.Once
	m.srv = &mux.Server{
		Open: func(ctx context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
			m.opened.Add(1)
			return client.OpenChannel("session", nil)
		},
		ForwardAgent: func(ssh.Channel) { m.forwarded.Add(1) },
		Logger:       slog.New(slog.NewTextHandler(m.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Terminate:    func() { once.Do(func() { close(m.terminated); m.l.Close() }) },
	}
	go func() { m.served <- m.srv.Serve(m.l) }()
	t.Cleanup(func() {
		m.l.Close()
		m.srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", m.log.String())
		}
	})
	return m
}

// ssh runs OpenSSH's client through the master at path: no config of its
// own, never a master itself.
func sshThrough(t *testing.T, path string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	sshPath := sshtest.LookPath(t, "ssh")
	cmd := exec.Command(sshPath, append([]string{"-F", "/dev/null", "-o", "ControlMaster=no", "-o", "BatchMode=yes", "-S", path}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := sshtest.Within(t, hangBound, func() error { return cmd.Run() })
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestServerServesOpenSSHClient(t *testing.T) {
	m := startOurMaster(t)
	// A forwarding names a port; nothing listens there, as it is refused.
	port := strconv.Itoa(sshtest.FreePort(t))
	t.Run("check", func(t *testing.T) {
		_, stderr, code := sshThrough(t, m.path, "", "-O", "check", "x")
		if code != 0 || !strings.Contains(stderr, "Master running (pid="+strconv.Itoa(os.Getpid())+")") {
			t.Fatalf("ssh -O check: exit %d, %q", code, stderr)
		}
	})
	t.Run("exec and exit status", func(t *testing.T) {
		out, stderr, code := sshThrough(t, m.path, "", "x", "echo hi; echo oops >&2; exit 3")
		if out != "hi\n" || stderr != "oops\n" || code != 3 {
			t.Fatalf("ssh -S x 'echo hi; exit 3': stdout %q, stderr %q, exit %d; want hi, oops, 3", out, stderr, code)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		out, stderr, code := sshThrough(t, m.path, "piped\n", "x", "tr a-z A-Z")
		if out != "PIPED\n" || code != 0 {
			t.Fatalf("stdout %q, stderr %q, exit %d", out, stderr, code)
		}
	})
	t.Run("subsystem", func(t *testing.T) {
		out, stderr, code := sshThrough(t, m.path, "sub\n", "-s", "x", "cat")
		if out != "sub\n" || code != 0 {
			t.Fatalf("stdout %q, stderr %q, exit %d", out, stderr, code)
		}
	})
	t.Run("env", func(t *testing.T) {
		out, stderr, code := sshThrough(t, m.path, "", "-o", "SetEnv=M2M_SET=given", "x", `echo "$M2M_SET"`)
		if out != "given\n" || code != 0 {
			t.Fatalf("stdout %q, stderr %q, exit %d", out, stderr, code)
		}
	})
	t.Run("a tty asked for", func(t *testing.T) {
		// Refused with MUX_S_TTY_ALLOC_FAIL; the command runs without one.
		out, stderr, code := sshThrough(t, m.path, "", "-tt", "x", "test -t 0 || echo no-tty")
		if out != "no-tty\n" || code != 0 {
			t.Fatalf("stdout %q, stderr %q, exit %d", out, stderr, code)
		}
	})
	t.Run("killed by a signal", func(t *testing.T) {
		// As through OpenSSH's master: no exit message, so ssh exits 255.
		_, stderr, code := sshThrough(t, m.path, "", "x", "kill -KILL $$")
		if code != 255 {
			t.Fatalf("exit %d, stderr %q; want 255", code, stderr)
		}
		if !strings.Contains(m.log.String(), "signal=KILL") {
			t.Fatalf("the signal is not logged:\n%s", m.log.String())
		}
	})
	t.Run("shell", func(t *testing.T) {
		out, stderr, code := sshThrough(t, m.path, "echo in-shell; exit 4\n", "-T", "x")
		if !strings.Contains(out, "in-shell\n") || code != 4 {
			t.Fatalf("stdout %q, stderr %q, exit %d", out, stderr, code)
		}
	})
	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"local forwarding", []string{"-O", "forward", "-L", "127.0.0.1:" + port + ":127.0.0.1:22", "x"}, "port forwarding is not offered"},
		{"remote forwarding", []string{"-O", "forward", "-R", "127.0.0.1:" + port + ":127.0.0.1:22", "x"}, "port forwarding is not offered"},
		{"dynamic forwarding", []string{"-O", "forward", "-D", "127.0.0.1:" + port, "x"}, "port forwarding is not offered"},
		{"stdio forwarding", []string{"-W", "127.0.0.1:22", "x"}, "stdio forwarding is not offered"},
		{"stop listening", []string{"-O", "stop", "x"}, "does not stop listening"},
		{"proxy", []string{"-O", "proxy", "x"}, "proxy mode is not offered"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := m.opened.Load()
			_, stderr, code := sshThrough(t, m.path, "", r.args...)
			if code == 0 || !strings.Contains(stderr, r.want) {
				t.Fatalf("ssh %v: exit %d, stderr %q; want a failure saying %q", r.args, code, stderr, r.want)
			}
			if n := m.opened.Load() - before; n != 0 {
				t.Fatalf("the refused request opened %d channels", n)
			}
		})
	}
	t.Run("the master still serves", func(t *testing.T) {
		if _, stderr, code := sshThrough(t, m.path, "", "-O", "check", "x"); code != 0 {
			t.Fatalf("ssh -O check after the refusals: exit %d, %q", code, stderr)
		}
	})
	t.Run("exit", func(t *testing.T) {
		_, stderr, code := sshThrough(t, m.path, "", "-O", "exit", "x")
		if code != 0 {
			t.Fatalf("ssh -O exit: exit %d, %q", code, stderr)
		}
		sshtest.Within(t, hangBound, func() struct{} { <-m.terminated; return struct{}{} })
		if err := sshtest.Within(t, hangBound, func() error { return <-m.served }); err != nil {
			t.Fatalf("Serve after the listener closed: %v", err)
		}
		if _, err := os.Lstat(m.path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the socket is still there after the listener closed: %v", err)
		}
	})
}

func TestServerServesOurClient(t *testing.T) {
	m := startOurMaster(t)
	pid, err := dial(t, m.path).Check(timeout(t, hangBound))
	if err != nil || int(pid) != os.Getpid() {
		t.Fatalf("Check = %d, %v; want our pid %d", pid, err, os.Getpid())
	}
	r := run(t, dial(t, m.path), mux.SessionRequest{Command: `echo "$M2M_E"; exit 9`, Env: []string{"M2M_E=passed"}}, nil)
	if r.err != nil || r.status != 9 || string(r.stdout) != "passed\n" {
		t.Fatalf("session: status %d, stdout %q, %v; want 9, passed", r.status, r.stdout, r.err)
	}
	r = run(t, dial(t, m.path), mux.SessionRequest{Subsystem: "nonesuch"}, nil)
	var re *mux.RefusedError
	if !errors.As(r.err, &re) || !strings.Contains(re.Reason, "refused the subsystem request") {
		t.Fatalf("a subsystem sshd does not have: %v, want a refusal", r.err)
	}
	t.Run("32 MiB each way", func(t *testing.T) { testTransfer(t, m.path) })
}

// TestServerClosedControlEndsChannel: a client that goes away takes its
// session's channel with it; the remote program sees its input end.
func TestServerClosedControlEndsChannel(t *testing.T) {
	m := startOurMaster(t)
	c := dial(t, m.path)
	p := newStdio(t)
	s, err := c.NewSession(timeout(t, hangBound), mux.SessionRequest{Command: "echo $$; exec cat"}, p.farIn, p.farOut, p.farErr)
	if err != nil {
		t.Fatal(err)
	}
	p.closeFar()
	var line [32]byte
	n, err := p.out.Read(line[:])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("the remote's pid: %q", line[:n])
	}
	s.Close()
	sshtest.WaitPidExit(t, pid, hangBound)
	err = sshtest.Within(t, hangBound, func() error { _, err := s.Wait(); return err })
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Wait after Close: %v, want net.ErrClosed", err)
	}
}

// TestServerMasterConnectionDies: the SSH connection under the master
// ends mid-session; the client's Wait says the master is gone.
func TestServerMasterConnectionDies(t *testing.T) {
	m := startOurMaster(t)
	c := dial(t, m.path)
	p := newStdio(t)
	s, err := c.NewSession(timeout(t, hangBound), mux.SessionRequest{Command: "echo started; exec cat"}, p.farIn, p.farOut, p.farErr)
	if err != nil {
		t.Fatal(err)
	}
	p.closeFar()
	if _, err := p.out.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	m.relay.Cut()
	err = sshtest.Within(t, hangBound, func() error { _, err := s.Wait(); return err })
	if !errors.Is(err, mux.ErrMasterGone) {
		t.Fatalf("Wait after the master's connection died: %v, want ErrMasterGone", err)
	}
}

// The master is asked to forward its agent for a session exactly when
// the session's client wants it: ours with Agent, OpenSSH's with -A.
func TestServerForwardsAgentWhenAsked(t *testing.T) {
	m := startOurMaster(t)
	for _, c := range []struct {
		name  string
		start func() int // the session's exit status
		want  int32      // ForwardAgent's calls so far
	}{
		{"ours, not asking", func() int { return run(t, dial(t, m.path), mux.SessionRequest{Command: "true"}, nil).status }, 0},
		{"ours, asking", func() int {
			return run(t, dial(t, m.path), mux.SessionRequest{Command: "true", Agent: true}, nil).status
		}, 1},
		{"ssh -a", func() int { _, _, code := sshThrough(t, m.path, "", "-a", "x", "true"); return code }, 1},
		{"ssh -A", func() int { _, _, code := sshThrough(t, m.path, "", "-A", "x", "true"); return code }, 2},
	} {
		if code := c.start(); code != 0 {
			t.Fatalf("%s: the session exited %d", c.name, code)
		}
		if got := m.forwarded.Load(); got != c.want {
			t.Fatalf("%s: ForwardAgent called %d times, want %d", c.name, got, c.want)
		}
	}
}
