//go:build unix

package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
)

// fakeEnv makes the test binary a fake master that behaves as its value
// says, for the starter's side of the readiness pipe.
const fakeEnv = "M2M_SSH_FAKE_MASTER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeMaster(mode))
	}
	os.Exit(m.Run())
}

// fakeMaster reads its spec and answers on the readiness pipe as mode
// says; "up" also records what it found it was given, in the file the spec
// names.
func fakeMaster(mode string) int {
	ready := os.NewFile(ReadyFD, "ready")
	spec, _ := os.ReadFile("/dev/fd/3")
	switch mode {
	case "up":
		var info []string
		sid, _ := getsid(0)
		info = append(info, fmt.Sprintf("sid=%d pid=%d", sid, os.Getpid()))
		for fd := 0; fd < 3; fd++ {
			link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			info = append(info, fmt.Sprintf("fd%d=%s", fd, link))
		}
		os.WriteFile(string(spec), []byte(strings.Join(info, "\n")), 0o600)
		writeReady(ready, readiness{PID: os.Getpid()})
	case "fail":
		WriteFailure(ready, lastingErr{})
	case "garbage":
		ready.Write([]byte("hello\n"))
	case "die":
		return 3
	case "asking":
		// Asks a person, as a master logging in with a password does:
		// the question runs in a process group of its own (as askpass
		// does), which only the master can end when it is told to.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM) // before it says it asks
		q := exec.Command("sleep", "300")
		q.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if q.Start() != nil {
			return 1
		}
		os.WriteFile(string(spec), []byte(fmt.Sprint(q.Process.Pid)), 0o600)
		<-c
		syscall.Kill(-q.Process.Pid, syscall.SIGKILL)
		q.Wait()
		return 1
	case "hang":
		// Blocked for good, and not a deadlock the runtime would end.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		<-c
	}
	return 0
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func fakeStarter(t *testing.T, mode string, spec string) *Starter {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fakeEnv+"="+mode)
	return &Starter{Path: filepath.Join(t.TempDir(), "cm"), Command: cmd, Spec: []byte(spec), LogPath: "/the/log"}
}

func TestSpawnUp(t *testing.T) {
	info := filepath.Join(t.TempDir(), "info")
	s := fakeStarter(t, "up", info)
	if err := s.spawn(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(info)
	if err != nil {
		t.Fatalf("the master did not get its spec: %v", err)
	}
	got := string(b)
	var sid, pid int
	fmt.Sscanf(got, "sid=%d pid=%d", &sid, &pid)
	if sid != pid || pid == 0 {
		t.Errorf("the master is not the leader of a session of its own:\n%s", got)
	}
	for fd := 0; fd < 3; fd++ {
		if !strings.Contains(got, fmt.Sprintf("fd%d=/dev/null", fd)) {
			t.Errorf("fd %d is not /dev/null:\n%s", fd, got)
		}
	}
}

func TestSpawnFailures(t *testing.T) {
	cases := []struct {
		mode      string
		want      string
		hint      string
		permanent bool
	}{
		{"fail", "Host key verification failed", "run ssh once; the master's log is /the/log", true},
		{"garbage", "not what m2m-ssh writes", "see the master's log, /the/log", false},
		{"die", "ended before it was ready (exit status 3)", "see the master's log, /the/log", false},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			err := fakeStarter(t, c.mode, "").spawn(context.Background())
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *StartError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if h := verdict.Hint(err); h != c.hint {
				t.Errorf("hint %q, want %q", h, c.hint)
			}
			if verdict.Permanent(err) != c.permanent {
				t.Errorf("permanent = %v, want %v", verdict.Permanent(err), c.permanent)
			}
			// A master that says nothing useful is sharing's failure;
			// one that met the server's is the session's.
			if NotShared(err) != (c.mode != "fail") {
				t.Errorf("NotShared = %v", NotShared(err))
			}
		})
	}
}

func TestSpawnCanceled(t *testing.T) {
	// "hang" never answers, as a master stuck connecting; the end of
	// ctx ends the wait, and the master with it.
	s := fakeStarter(t, "hang", "")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("signal"))
	if err := s.spawn(ctx); err == nil || err.Error() != "signal" {
		t.Fatalf("error %v, want the context's cause", err)
	}
}

// A master given up on (the wait's end, here a canceled session) is asked
// to end before it is killed: it may be asking a person, and only it can
// take the question away; killed outright, it left its askpass dialog
// behind, and the session that then connected directly asked again.
func TestSpawnGivenUpEndsQuestion(t *testing.T) {
	// The fake master tells the question's pid on a pipe: read, the
	// question is asked.
	pidFile := filepath.Join(t.TempDir(), "question")
	if err := syscall.Mkfifo(pidFile, 0o600); err != nil {
		t.Fatal(err)
	}
	s := fakeStarter(t, "asking", pidFile)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	asked := make(chan int, 1)
	go func() {
		b, _ := os.ReadFile(pidFile)
		var pid int
		fmt.Sscan(string(b), &pid)
		asked <- pid
		cancel(errors.New("given up"))
	}()
	if err := s.spawn(ctx); err == nil || err.Error() != "given up" {
		t.Fatalf("error %v, want the context's cause", err)
	}
	pid := <-asked
	if pid <= 0 {
		t.Fatal("no question's pid")
	}
	// The master reaps it before it exits, and spawn returns after that.
	if err := syscall.Kill(pid, 0); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the master's question (pid %d) outlived it", pid)
	}
}
