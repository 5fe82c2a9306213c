//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/master"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// masterBound bounds every wait on a master (to start, to answer, to
// end): far more than any of it takes on a loaded machine, so a test
// fails on a hang, never on a timing.
const masterBound = 90 * time.Second

// sharing is a world whose buildbox is reached through a counting relay,
// with connection sharing on: ControlMaster auto, a ControlPath of its
// own and the ControlPersist it was made with.
type sharing struct {
	w     *world
	relay *sshtest.Relay
	dir   string // ControlPath's directory
	path  string // ControlPath, resolved
	n     int    // sessions started, for their pid files
}

func newSharing(t *testing.T, persist string) *sharing {
	t.Helper()
	w := newWorld(t)
	// Not t.TempDir: a Unix socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "m2m-cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &sharing{w: w, relay: sshtest.StartRelay(t, w.sshd.Addr()), dir: dir, path: filepath.Join(dir, "cm")}
	s.w.config = sshtest.WriteFile(t, w.dir, "ssh_config_shared", append([]string{
		"Host buildbox",
		"  ControlMaster auto",
		"  ControlPath " + s.path,
		"  ControlPersist " + persist,
	}, readLines(t, w.config)...)...)
	t.Cleanup(func() { s.exit(t) })
	return s
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// command is m2m-ssh for buildbox's testmcp through the relay.
func (s *sharing) command(t *testing.T, extra ...string) *exec.Cmd {
	t.Helper()
	s.n++
	return s.w.command(s.w.viaRelay(t, s.relay, filepath.Join(s.w.dir, fmt.Sprintf("testmcp-%d.pid", s.n)), extra...)...)
}

// masterPID asks the master at ControlPath for its pid.
func (s *sharing) masterPID(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	c, err := mux.Dial(ctx, s.path)
	if err != nil {
		t.Fatalf("no master at %s: %v\nits log:\n%s", s.path, err, s.masterLog(t))
	}
	defer c.Close()
	pid, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("the master's alive check: %v", err)
	}
	return int(pid)
}

// masterLog is what the masters for ControlPath logged.
func (s *sharing) masterLog(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(s.logPath(t))
	return string(b)
}

func (s *sharing) logPath(t *testing.T) string {
	t.Helper()
	// The state directory as m2m-ssh sees it: its HOME is the world's.
	return master.LogPath(filepath.Join(s.w.dir, ".local", "state", "m2m-ssh"), s.path)
}

// authentications counts the logins sshd accepted, once it has logged the
// first.
func (s *sharing) authentications(t *testing.T) int {
	t.Helper()
	s.w.sshd.WaitLog(t, "Accepted publickey")
	return strings.Count(s.w.sshd.Log(), "Accepted publickey")
}

// exit ends the master, if one runs, so that nothing outlives the test.
func (s *sharing) exit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	if c, err := mux.Dial(ctx, s.path); err == nil {
		c.Exit(ctx)
		c.Close()
	}
}

// ssh runs OpenSSH's client on the master at ControlPath, never a master
// itself, and returns its output and exit status.
func (s *sharing) ssh(t *testing.T, ctx context.Context, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, sshtest.LookPath(t, "ssh"), append([]string{"-F", s.w.config, "-S", s.path, "-o", "ControlMaster=no"}, args...)...)
	cmd.Env = []string{"HOME=" + s.w.dir, "PATH=/usr/bin:/bin"}
	// ssh passes its stdio to the master: once ssh is killed at ctx's
	// end, the master may still hold the output pipe open.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ssh %s: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// doctor is m2m-ssh doctor's report for buildbox through the relay.
func (s *sharing) doctor(t *testing.T) string {
	t.Helper()
	s.n++
	args := append([]string{"doctor", "-F", s.w.config}, s.w.viaRelay(t, s.relay, filepath.Join(s.w.dir, fmt.Sprintf("testmcp-%d.pid", s.n)))...)
	cmd := m2mCommand([]string{"HOME=" + s.w.dir, "PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + s.w.agent.Sock}, args...)
	out := sshtest.Within(t, masterBound, func() string {
		b, _ := cmd.CombinedOutput()
		return string(b)
	})
	if cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("doctor failed:\n%s", out)
	}
	return out
}

// Five m2m-ssh started at once, as a host starts its servers, share one
// connection and one authentication through one master, and each session
// works.
func TestMasterFiveSessionsOneConnection(t *testing.T) {
	s := newSharing(t, "60")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	const n = 5
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = s.command(t)
	}
	sessions := make([]*mcp.ClientSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := connect(t, ctx, cmds[i])
			if err != nil {
				errs[i] = err
				return
			}
			sessions[i] = cs
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint("session ", i)}})
			switch {
			case err != nil:
				errs[i] = err
			case res.Content[0].(*mcp.TextContent).Text != fmt.Sprint("session ", i):
				errs[i] = fmt.Errorf("echo answered %v", res.Content)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("session %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.Fatalf("master log:\n%s", s.masterLog(t))
	}
	if got := s.relay.Accepted(); got != 1 {
		t.Errorf("%d TCP connections reached sshd; want 1", got)
	}
	if got := s.authentications(t); got != 1 {
		t.Errorf("sshd accepted %d logins; want 1", got)
	}
	pid := s.masterPID(t)
	var rss int64
	for i := range sessions {
		rss += sshtest.PeakRSS(t, cmds[i].Process.Pid)
	}
	t.Logf("peak RSS: the master %.1f MiB, five clients %.1f MiB", float64(sshtest.PeakRSS(t, pid))/(1<<20), float64(rss)/(1<<20))
	for _, cs := range sessions {
		cs.Close()
		cs.Wait()
	}
	if got := s.masterPID(t); got != pid {
		t.Fatalf("the master changed from %d to %d", pid, got)
	}
	if log := s.masterLog(t); strings.Count(log, "serving the shared connection") != 1 {
		t.Fatalf("more than one master started:\n%s", log)
	}
}

// OpenSSH's own client rides m2m-ssh's master: a command with its exit
// status, ssh -O check, ssh -O exit; forwardings are refused.
func TestMasterServesOpenSSH(t *testing.T) {
	s := newSharing(t, "yes")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	cs, err := connect(t, ctx, s.command(t))
	if err != nil {
		t.Fatal(err)
	}
	cs.Close()
	cs.Wait()
	pid := s.masterPID(t) // ControlPersist yes: still there

	ssh := func(args ...string) (string, int) { return s.ssh(t, ctx, args...) }
	if out, code := ssh("buildbox", "echo", "through m2m-ssh"); code != 0 || !strings.Contains(out, "through m2m-ssh") {
		t.Errorf("ssh -S buildbox echo: status %d, output %q", code, out)
	}
	if out, code := ssh("buildbox", "exit 7"); code != 7 {
		t.Errorf("ssh -S buildbox 'exit 7': status %d, output %q", code, out)
	}
	if out, code := ssh("-O", "check", "buildbox"); code != 0 || !strings.Contains(out, fmt.Sprintf("Master running (pid=%d)", pid)) {
		t.Errorf("ssh -O check: status %d, output %q", code, out)
	}
	if out, code := ssh("-O", "forward", "-L", "127.0.0.1:0:127.0.0.1:1", "buildbox"); code == 0 {
		t.Errorf("ssh -O forward -L was not refused: %q", out)
	}
	if out, code := ssh("-W", "127.0.0.1:1", "buildbox"); code == 0 {
		t.Errorf("ssh -W was not refused: %q", out)
	}
	if got := s.relay.Accepted(); got != 1 {
		t.Errorf("%d connections reached sshd; want 1", got)
	}

	// m2m-ssh's own view, then ssh -O exit.
	if out := s.doctor(t); !strings.Contains(out, fmt.Sprintf("alive (pid %d)", pid)) || !strings.Contains(out, "m2m-ssh's masters at this path log to "+s.logPath(t)) {
		t.Errorf("doctor does not show the master:\n%s", out)
	}
	control := m2mCommand([]string{"HOME=" + s.w.dir, "PATH=/usr/bin:/bin"}, "control", "-F", s.w.config, "buildbox", "check")
	out, err := control.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("Master running (pid=%d)", pid)) {
		t.Errorf("m2m-ssh control buildbox check: %v, %q", err, out)
	}
	if out, code := ssh("-O", "exit", "buildbox"); code != 0 || !strings.Contains(out, "Exit request sent") {
		t.Errorf("ssh -O exit: status %d, output %q", code, out)
	}
	sshtest.WaitPidExit(t, pid, masterBound)
	if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket outlived its master: %v", err)
	}
	out, err = s.w.command("-O", "check", "buildbox").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no master is running at "+s.path) {
		t.Errorf("m2m-ssh -O check with no master: %v, %q", err, out)
	}
}

// ControlPersist 2: the master ends once its last session has been gone
// for two seconds, and takes its socket with it.
func TestMasterPersistExpires(t *testing.T) {
	t.Parallel() // waits out the product's timers; shares nothing with the other tests
	s := newSharing(t, "2")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	cs, err := connect(t, ctx, s.command(t))
	if err != nil {
		t.Fatal(err)
	}
	pid := s.masterPID(t)
	cs.Close()
	cs.Wait()
	sshtest.WaitPidExit(t, pid, masterBound)
	if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket outlived its master: %v", err)
	}
	if log := s.masterLog(t); !strings.Contains(log, "no session for ControlPersist's time") {
		t.Errorf("the master's log does not say why it ended:\n%s", log)
	}
	if out := s.doctor(t); !strings.Contains(out, "none listening at "+s.path+": m2m-ssh starts a master of its own there, which stays 2s after its last session") {
		t.Errorf("doctor does not say a master would be started:\n%s", out)
	}
}

// The connection cut under the master: the master ends at once, every
// session's bridge reconnects, which starts one new master, and every
// session works again.
func TestMasterConnectionCut(t *testing.T) {
	s := newSharing(t, "60")
	const n = 3
	hosts := make([]*rawHost, n)
	for i := range hosts {
		hosts[i] = startRaw(t, s.command(t, "--log-level", "DEBUG"))
		hosts[i].initialize()
		hosts[i].echo(1, masterBound)
	}
	first := s.masterPID(t)
	// A request in flight when the connection goes: answered, not lost.
	hosts[0].call(9, "sleep", `{"millis":60000}`)
	hosts[0].echo(10, masterBound) // the sleep has reached the server
	s.relay.Cut()
	m := hosts[0].recv(masterBound)
	if e, _ := m["error"].(map[string]any); m["id"] != 9.0 || e == nil || e["code"] != float64(bridge.CodeConnectionLost) {
		t.Fatalf("the request in flight got %v; want error %d", m, bridge.CodeConnectionLost)
	}
	sshtest.WaitPidExit(t, first, masterBound)
	for _, h := range hosts {
		h.echo(2, masterBound)
	}
	second := s.masterPID(t)
	if second == first {
		t.Fatalf("the master %d is the one whose connection was cut", first)
	}
	if got := s.relay.Accepted(); got != 2 {
		t.Errorf("%d connections reached sshd; want 2, one per master", got)
	}
	if log := s.masterLog(t); !strings.Contains(log, "the connection ended") {
		t.Errorf("the first master's log does not say its connection ended:\n%s", log)
	}
}

// Another user's process cannot use the master even when the socket's
// mode would let it connect: the master checks every peer's uid.
func TestMasterRefusesOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a process as another user")
	}
	u := sshtest.UnprivilegedUser(t)
	s := newSharing(t, "yes")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	cs, err := connect(t, ctx, s.command(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	pid := s.masterPID(t)

	// Only the master's own check stands in the way now.
	for p, mode := range map[string]os.FileMode{s.dir: 0o755, s.path: 0o666} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, sshtest.LookPath(t, "ssh"), "-F", "/dev/null", "-S", s.path, "-O", "check", "buildbox")
	cmd.Env = []string{"HOME=" + sshtest.UserDir(t, u), "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = asUser(t, u)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "Master running") {
		t.Fatalf("user %s's ssh -O check was answered: %v, %q", u.Username, err, out)
	}
	t.Logf("user %s's ssh -O check: %v, %q", u.Username, err, out)
	if err := os.Chmod(s.path, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := s.masterPID(t); got != pid {
		t.Fatalf("the master changed from %d to %d", pid, got)
	}
	if log := s.masterLog(t); !strings.Contains(log, u.Uid) {
		t.Logf("the master's log does not name the refused uid %s:\n%s", u.Uid, log)
	}
}

// asUser makes a command run as u (the test runs as root).
func asUser(t *testing.T, u *user.User) *syscall.SysProcAttr {
	t.Helper()
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// What m2m-ssh is given as a secret reaches the master on its spec pipe or
// in the variable it came in, and nowhere a log, a process listing or
// another process's view would show it: not the master's log at DEBUG,
// not its command line, not its environment (for --passphrase).
func TestMasterKeepsSecrets(t *testing.T) {
	s := newSharing(t, "yes")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	const passphrase = "hunter2-not-for-logs"
	key, err := os.ReadFile(s.w.key.Path)
	if err != nil {
		t.Fatal(err)
	}
	s.n++
	args := append([]string{"-F", s.w.config, "--log-level", "DEBUG", "--passphrase", passphrase, "-o", "IdentityAgent=none"},
		s.w.viaRelay(t, s.relay, filepath.Join(s.w.dir, "testmcp-secret.pid"))...)
	cmd := m2mCommand([]string{"HOME=" + s.w.dir, "PATH=/usr/bin:/bin", "M2M_SSH_KEY=" + string(key), "M2M_SSH_PASSPHRASE=" + passphrase}, args...)
	cs, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	pid := s.masterPID(t)
	body := strings.Split(strings.TrimSpace(string(key)), "\n")[1] // a line of the key's base64
	for what, text := range map[string]string{
		"log":          s.masterLog(t),
		"command line": readProc(t, pid, "cmdline"),
	} {
		if strings.Contains(text, passphrase) || strings.Contains(text, body) {
			t.Errorf("the master's %s holds a secret:\n%s", what, text)
		}
	}
	// The master still logged in with M2M_SSH_KEY (IdentityAgent none):
	// it had the key, from its spec, not from its environment.
	if env := readProc(t, pid, "environ"); strings.Contains(env, passphrase) || strings.Contains(env, body) {
		t.Errorf("the master's environment holds a secret")
	}
	if !strings.Contains(s.masterLog(t), "level=DEBUG") {
		t.Errorf("the master did not log at the level it was given:\n%s", s.masterLog(t))
	}
}

func readProc(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	return string(b)
}

// The master keeps the connection alive for all its sessions: a path that
// goes silent is found dead by its keepalive, the master ends, and once
// the path is back every session rides a new master.
func TestMasterKeepalive(t *testing.T) {
	s := newSharing(t, "60")
	opts := []string{"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "-o", "ConnectTimeout=5"}
	const n = 2
	hosts := make([]*rawHost, n)
	for i := range hosts {
		hosts[i] = startRaw(t, s.command(t, opts...))
		hosts[i].initialize()
		hosts[i].echo(1, masterBound)
	}
	first := s.masterPID(t)
	s.relay.BlackHole()
	sshtest.WaitPidExit(t, first, masterBound)
	if log := s.masterLog(t); !strings.Contains(log, "did not answer for") {
		t.Errorf("the master's log does not say its keepalive gave up:\n%s", log)
	}
	s.relay.Restore()
	for _, h := range hosts {
		h.echo(2, masterBound)
	}
	if second := s.masterPID(t); second == first {
		t.Fatalf("the master %d is the one whose connection went silent", first)
	}
}

// ControlMaster ask and autoask have the master confirm each session,
// which m2m-ssh's master cannot: it starts none, and connects directly.
func TestMasterNotForAsk(t *testing.T) {
	for _, mode := range []string{"ask", "autoask"} {
		t.Run(mode, func(t *testing.T) {
			s := newSharing(t, "yes")
			ctx, cancel := context.WithTimeout(context.Background(), masterBound)
			defer cancel()
			cmd := s.command(t, "-o", "ControlMaster="+mode)
			cs, err := connect(t, ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a master was started with ControlMaster %s: %v", mode, err)
			}
			// Closed, m2m-ssh has exited and its stderr is all copied.
			cs.Close()
			if log := fmt.Sprint(cmd.Stderr); !strings.Contains(log, "which m2m-ssh's own master cannot ask") {
				t.Errorf("the log does not say why no master was started:\n%s", log)
			}
		})
	}
}

// When the master cannot share the connection (its ControlPath is in a
// directory others could write to, its lock file is someone else's), the
// session connects directly, and the log says why.
func TestMasterCannotShare(t *testing.T) {
	type cannotShare = struct {
		name  string
		setup func(s *sharing) error
		want  string
		args  func(s *sharing) []string // m2m-ssh's extra arguments
	}
	cases := []cannotShare{
		{name: "directory writable by others", setup: func(s *sharing) error { return os.Chmod(s.dir, 0o777) }, want: "is writable by group or others"},
		// Short enough to dial, too long to bind with the temporary
		// suffix a master's socket is made under.
		{name: "ControlPath too long for a socket", setup: func(*sharing) error { return nil }, want: "too long for a socket",
			args: func(s *sharing) []string {
				return []string{"-o", "ControlPath=" + filepath.Join(s.dir, strings.Repeat("c", 100-len(s.dir)))}
			}},
		{name: "log directory writable by others", setup: func(s *sharing) error {
			state := filepath.Join(s.w.dir, ".local", "state", "m2m-ssh")
			if err := os.MkdirAll(state, 0o700); err != nil {
				return err
			}
			return os.Chmod(state, 0o777)
		}, want: "others can write to it (mode 0777)"},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, cannotShare{name: "another user's lock file", setup: func(s *sharing) error {
			if err := os.WriteFile(s.path+".lock", nil, 0o600); err != nil {
				return err
			}
			return os.Chown(s.path+".lock", 4242, 4242)
		}, want: "owned by uid 4242"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSharing(t, "yes")
			if err := c.setup(s); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), masterBound)
			defer cancel()
			var args []string
			if c.args != nil {
				args = c.args(s)
			}
			cmd := s.command(t, args...)
			cs, err := connect(t, ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "direct"}}); err != nil {
				t.Fatal(err)
			}
			// What cannot be shared is found before a master logs in:
			// the session's own is the only login.
			if got := s.relay.Accepted(); got != 1 {
				t.Errorf("%d connections reached sshd; want 1, the session's own", got)
			}
			// Closed, m2m-ssh has exited and its stderr is all copied.
			cs.Close()
			log := fmt.Sprint(cmd.Stderr)
			if !strings.Contains(log, "cannot start a master to share the connection; connecting directly") || !strings.Contains(log, c.want) {
				t.Errorf("the log does not say why the connection is not shared (%q):\n%s", c.want, log)
			}
		})
	}
}
