//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// largeBound bounds a 32 MiB result: the test server makes and encodes
// it in some seconds, several times that on a loaded machine under -race.
const largeBound = 3 * time.Minute

// maxHeld bounds the connections the silent listener keeps.
const maxHeld = 16

// muxBound bounds what must not hang on a loaded machine: an answer, an
// exit.
const muxBound = 30 * time.Second

// The remote program's exit status comes back through the master's exit
// message as m2m-ssh's own, as it does over a direct connection. A program
// killed by a signal has none through a master (OpenSSH's sends none, and
// ssh -S then exits 255), and 128 + the signal's number directly. The
// program ends by itself while the host's stdin stays open, and
// --max-reconnects 0 makes that the end of the session.
func TestEndToEndMuxExitStatus(t *testing.T) {
	w := newWorld(t)
	for _, path := range e2ePaths(t, w) {
		for _, c := range []struct {
			name           string
			command        string
			direct, shared int
		}{
			{"exits 7", "exit 7", 7, 7},
			{"killed", "kill -9 $$", 128 + 9, bridge.ExitStatus},
		} {
			t.Run(path.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				want := c.direct
				if path.name != "direct" {
					want = c.shared
				}
				cmd := path.command("--max-reconnects", "0", "buildbox", "--", c.command)
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				defer stdin.Close()
				stderr := &sshtest.Buffer{}
				cmd.Stderr = stderr
				err = sshtest.Within(t, muxBound, cmd.Run)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != want {
					t.Fatalf("m2m-ssh exited with %v, want status %d\n%s", err, want, stderr)
				}
				path.check(t, cmd)
			})
		}
	}
}

// A result of 32 MiB comes through whole, on each path.
func TestEndToEndMuxLarge(t *testing.T) {
	w := newWorld(t)
	for _, path := range e2ePaths(t, w) {
		t.Run(path.name, func(t *testing.T) {
			h := startRaw(t, path.command("buildbox", "--", bins.testmcp))
			h.initialize()
			const size = 32 << 20
			start := time.Now()
			h.call(1, "blob", fmt.Sprintf(`{"size":%d}`, size))
			msg := h.recv(largeBound)
			t.Logf("32 MiB in %s", time.Since(start).Round(time.Millisecond))
			res, _ := msg["result"].(map[string]any)
			content, _ := res["content"].([]any)
			if len(content) != 1 {
				t.Fatalf("blob answer = %.300v", msg)
			}
			if text, _ := content[0].(map[string]any)["text"].(string); text != sshtest.Blob(size) {
				t.Fatalf("blob result differs: %d bytes, want %d", len(text), size)
			}
			h.endLog() // done with: m2m-ssh exited, its stderr whole
			path.check(t, h.cmd)
		})
	}
}

// inFlightLost sends a request that stays in flight, proves it reached the
// server, applies fault, and checks the request is answered as lost.
func inFlightLost(t *testing.T, h *rawHost, id int, fault func()) {
	t.Helper()
	h.call(id, "sleep", `{"millis":60000}`)
	h.echo(id+1, muxBound) // frames arrive in order: the sleep is there
	fault()
	msg := h.recv(muxBound)
	e, _ := msg["error"].(map[string]any)
	if msg["id"] != float64(id) || e == nil || e["code"] != float64(bridge.CodeConnectionLost) {
		t.Fatalf("request %d in flight: got %v; want error %d", id, msg, bridge.CodeConnectionLost)
	}
}

// When the master goes away mid-session, the requests in flight are
// answered and the session comes back: directly when m2m-ssh can log in
// itself, through a master that comes back when it cannot; and when
// neither can be, every request is answered with why.
func TestEndToEndMuxMasterKilled(t *testing.T) {
	w := newWorld(t)

	t.Run("falls back to direct", func(t *testing.T) {
		m := w.startMaster(t, w.key)
		start := time.Now()
		h := startRaw(t, w.command("-o", "ControlPath="+m.Path, "buildbox", "--", bins.testmcp))
		h.initialize()
		bound := backBound(t, time.Since(start))
		inFlightLost(t, h, 10, func() { killMaster(t, m) })
		h.echo(20, bound)
		log := h.endLog()
		if !strings.Contains(log, "riding the shared connection") || !strings.Contains(log, "no master is listening at "+m.Path+"; connecting directly") {
			t.Fatalf("the log does not tell of the master, then the direct connection:\n%s", log)
		}
	})

	t.Run("rides the master that comes back", func(t *testing.T) {
		m := w.startMaster(t, w.key)
		// The direct path is refused, which waiting may change: m2m-ssh
		// keeps trying, and looks for a master each time.
		refused := strconv.Itoa(sshtest.FreePort(t))
		h := startRaw(t, w.command("-o", "ControlPath="+m.Path, "--max-reconnects", "1000",
			"--port", refused, "buildbox", "--", bins.testmcp))
		h.initialize()
		inFlightLost(t, h, 10, func() { killMaster(t, m) })
		// A new master on the same path, as a user logging in again.
		os.Remove(m.Path)
		startMasterAt(t, m.Path, w.masterEnv(), "-F", w.config, "buildbox")
		h.echo(20, muxBound)
		if log := h.endLog(); strings.Count(log, "riding the shared connection") != 2 {
			t.Fatalf("rode a master %d times, want 2:\n%s", strings.Count(log, "riding the shared connection"), log)
		}
	})

	t.Run("answers with the reason", func(t *testing.T) {
		m := w.startMaster(t, w.key)
		h := startRaw(t, w.bareCommand("-o", "ControlPath="+m.Path, "buildbox", "--", bins.testmcp))
		h.initialize()
		inFlightLost(t, h, 10, func() { killMaster(t, m) })
		for id := 20; id < 23; id++ {
			h.call(id, "echo", `{"text":"x"}`)
			msg := h.recv(muxBound)
			e, _ := msg["error"].(map[string]any)
			if msg["id"] != float64(id) || e == nil || e["code"] != float64(bridge.CodeUnavailable) {
				t.Fatalf("request %d: got %v; want error %d", id, msg, bridge.CodeUnavailable)
			}
			text, _ := e["message"].(string)
			if !strings.Contains(text, "the shared connection at "+m.Path+" ended; log in again with `ssh -M -S "+m.Path) {
				t.Fatalf("request %d: the error does not say why: %q", id, text)
			}
		}
		h.in.Close()
		err := sshtest.Within(t, muxBound, h.cmd.Wait)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != bridge.ExitStatus {
			t.Fatalf("m2m-ssh exited with %v, want status %d", err, bridge.ExitStatus)
		}
	})
}

// passUser is the account .ci/run gives a password, picked at random on
// each machine and kept in passFile, readable by root alone.
const (
	passUser = "m2m-pass"
	passFile = "/var/lib/m2m-ssh-test/m2m-pass.password"
)

// secondFactor is passUser's password. sshd checks passwords only as
// root; without the account the test is skipped, and failed under CI.
func secondFactor(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sshd checks passwords only when it runs as root")
	}
	_, err := user.Lookup(passUser)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(passFile)
	}
	pass := strings.TrimSpace(string(data))
	if err == nil && pass == "" {
		err = os.ErrNotExist
	}
	if err != nil {
		if sshtest.InCI() {
			t.Fatalf("user %s or its password in %s is missing (%v); CI must create them (.ci/run)", passUser, passFile, err)
		}
		t.Skipf("user %s or its password in %s is missing (%v): create them as .ci/run does", passUser, passFile, err)
	}
	return pass
}

// A master that logged in with a second factor (a key, then a password it
// asked for through SSH_ASKPASS) carries m2m-ssh, which has neither.
func TestEndToEndMuxSecondFactor(t *testing.T) {
	pass := secondFactor(t)
	w := newWorldAs(t, passUser,
		"Match User "+passUser,
		"  PasswordAuthentication yes",
		"  AuthenticationMethods publickey,password")
	// The password reaches ssh alone, through a file only root reads.
	pwFile := sshtest.WriteFile(t, w.dir, "password", pass)
	askpass := sshtest.WriteFile(t, w.dir, "askpass", "#!/bin/sh", "exec cat "+pwFile)
	if err := os.Chmod(askpass, 0o700); err != nil {
		t.Fatal(err)
	}

	// The key alone does not get in: the server wants the second factor.
	ctx, cancel := context.WithTimeout(context.Background(), muxBound)
	defer cancel()
	wantStartFailure(t, ctx, w.command("buildbox", "--", bins.testmcp), "Authentication failed")

	env := append(w.masterEnv(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force")
	dir, err := os.MkdirTemp("", "m2m-cm") // a socket's path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := startMasterAt(t, filepath.Join(dir, "cm"), env, "-F", w.config, "-o", "NumberOfPasswordPrompts=1", "buildbox")
	h := startRaw(t, w.bareCommand("-o", "ControlPath="+m.Path, "buildbox", "--", bins.testmcp))
	h.initialize()
	h.echo(1, muxBound)
	if log := h.endLog(); !strings.Contains(log, "riding the shared connection") {
		t.Fatalf("the session did not ride the master:\n%s", log)
	}
}

// A control socket that is not to be trusted is refused, with a reason and
// what to do; a stale one, or one whose listener does not speak the
// protocol, is as good as no master: m2m-ssh connects directly.
func TestEndToEndMuxSockets(t *testing.T) {
	t.Parallel() // waits out the product's timers; shares nothing with the other tests
	w := newWorld(t)
	other, otherErr := user.Lookup(sshtest.TestUser)

	refused := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
		root    bool
	}{
		{"mode 0666", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}, "is accessible to group or others (mode 0666)", false},
		{"owned by another user", func(t *testing.T, path string) {
			uid, _ := strconv.Atoi(other.Uid)
			if err := os.Lchown(path, uid, -1); err != nil {
				t.Fatal(err)
			}
		}, "is owned by uid", true},
		{"not a socket", func(t *testing.T, path string) {
			os.Remove(path)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket", false},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if c.root && (os.Geteuid() != 0 || otherErr != nil) {
				if sshtest.InCI() {
					t.Fatalf("needs root and user %s (%v)", sshtest.TestUser, otherErr)
				}
				t.Skipf("needs root and user %s to give the socket away", sshtest.TestUser)
			}
			m := w.startMaster(t, w.key)
			c.prepare(t, m.Path)
			ctx, cancel := context.WithTimeout(context.Background(), muxBound)
			defer cancel()
			// The agent is there: a direct connection would work, and
			// must not be made behind the user's back.
			wantStartFailure(t, ctx, w.command("-o", "ControlPath="+m.Path, "buildbox", "--", bins.testmcp), m.Path+" "+c.want)
		})
	}

	direct := []struct {
		name    string
		listen  func(t *testing.T, path string)
		wantLog string
	}{
		{"stale socket", func(t *testing.T, path string) {
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetUnlinkOnClose(false)
			l.Close()
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "no master is listening at"},
		{"listener that is not a master", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("SSH-2.0-not-a-master\r\n\x00\x00\x00\x05junk!"))
					c.Close()
				}
			}()
		}, "did not answer as one; connecting directly"},
		{"listener that never answers", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var held []net.Conn
			t.Cleanup(func() {
				l.Close()
				mu.Lock()
				defer mu.Unlock()
				for _, c := range held {
					c.Close()
				}
				held = nil
			})
			go func() {
				// Holds each connection open, silent, until the
				// test ends; m2m-ssh makes one a connect.
				for range maxHeld {
					c, err := l.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}()
		}, "did not answer as one; connecting directly"},
	}
	for _, c := range direct {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "cm")
			if len(path) > 100 {
				dir, _ = os.MkdirTemp("", "m2m-cm")
				t.Cleanup(func() { os.RemoveAll(dir) })
				path = filepath.Join(dir, "cm")
			}
			c.listen(t, path)
			h := startRaw(t, w.command("-o", "ControlPath="+path, "buildbox", "--", bins.testmcp))
			h.initialize()
			h.echo(1, muxBound)
			if log := h.endLog(); !strings.Contains(log, c.wantLog) || strings.Contains(log, "riding the shared connection") {
				t.Fatalf("the log does not say the master was passed over (%q):\n%s", c.wantLog, log)
			}
		})
	}
}

// doctor checks the master as its own step, and goes the way the bridge
// goes: through a live master with no credentials, past a stale socket to
// the direct steps, and not past a socket that is not to be trusted.
func TestEndToEndMuxDoctor(t *testing.T) {
	w := newWorld(t)
	m := w.startMaster(t, w.key)
	stale := w.startMaster(t, w.key)
	killMaster(t, stale)
	open := w.startMaster(t, w.key)
	if err := os.Chmod(open.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cmd    *exec.Cmd
		status int
		want   []string
		not    []string
	}{
		{"live master", asDoctor(w.bareCommand("-o", "ControlPath="+m.Path, "buildbox", "--", bins.testmcp)), 0, []string{
			fmt.Sprintf(`(?m)^✓ master: %s, owned by \S+ \(uid %d\), alive \(pid %d\), protocol version 4$`, regexp.QuoteMeta(m.Path), os.Getuid(), m.Pid),
			`(?m)^✓ channel: exec \S+/testmcp accepted through the shared connection at ` + regexp.QuoteMeta(m.Path),
			`(?m)^✓ MCP initialize: testmcp `,
		}, []string{"authentication", "TCP connect"}},
		{"stale socket", asDoctor(w.command("-o", "ControlPath="+stale.Path, "buildbox", "--", bins.testmcp)), 0, []string{
			`(?m)^· master: none listening at ` + regexp.QuoteMeta(stale.Path) + `: connecting directly$`,
			`(?m)^✓ authentication: buildbox accepted `,
			`(?m)^✓ channel: exec \S+/testmcp accepted$`,
		}, nil},
		{"socket open to all", asDoctor(w.command("-o", "ControlPath="+open.Path, "buildbox", "--", bins.testmcp)), 1, []string{
			`(?m)^✗ master: the control socket ` + regexp.QuoteMeta(open.Path) + ` is accessible to group or others \(mode 0666\)$`,
			`(?m)^    hint: remove `,
		}, []string{"authentication", "✓ channel"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := &sshtest.Buffer{}
			c.cmd.Stdout, c.cmd.Stderr = out, out
			err := sshtest.Within(t, muxBound, c.cmd.Run)
			var ee *exec.ExitError
			if status := 0; err != nil && !errors.As(err, &ee) || (ee != nil && ee.ExitCode() != c.status) || (ee == nil && c.status != status) {
				t.Fatalf("doctor exited with %v, want status %d:\n%s", err, c.status, out)
			}
			for _, re := range c.want {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("the report lacks %s:\n%s", re, out)
				}
			}
			for _, s := range c.not {
				if strings.Contains(out.String(), s) {
					t.Errorf("the report has %q:\n%s", s, out)
				}
			}
		})
	}
}

// asDoctor is cmd as m2m-ssh doctor, its flags after the command's name.
func asDoctor(cmd *exec.Cmd) *exec.Cmd {
	c := exec.Command(cmd.Path, append([]string{"doctor"}, cmd.Args[1:]...)...)
	c.Env = cmd.Env
	return c
}
