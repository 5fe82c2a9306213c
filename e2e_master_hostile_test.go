//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/master"
)

// runMaster runs "m2m-ssh serve-master" as a starter would, with spec on
// its spec descriptor, and returns what it said on the readiness pipe and
// how it exited.
func runMaster(t *testing.T, home string, spec []byte) (map[string]any, *os.ProcessState) {
	t.Helper()
	specR, specW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer readyR.Close()
	cmd := m2mCommand([]string{"HOME=" + home, "PATH=/usr/bin:/bin"}, masterCommand)
	cmd.ExtraFiles = []*os.File{specR, readyW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	specR.Close()
	readyW.Close()
	go func() {
		specW.Write(spec)
		specW.Close()
	}()
	b := sshtest.Within(t, masterBound, func() []byte {
		b, _ := io.ReadAll(readyR)
		return b
	})
	sshtest.Within(t, masterBound, func() error { return cmd.Wait() })
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the readiness message %q is not JSON: %v", b, err)
	}
	return m, cmd.ProcessState
}

// A master given a spec that is broken says so on the readiness pipe,
// quickly, and exits non-zero; it connects nowhere.
func TestMasterHostileSpec(t *testing.T) {
	home := t.TempDir()
	good := func(edit func(*masterSpec)) []byte {
		s := masterSpec{Alias: "buildbox", ConfigFile: "none", LogLevel: "INFO", ControlPath: filepath.Join(home, "cm"),
			Options: []string{"HostName=127.0.0.1", "Port=1"}}
		edit(&s)
		b, _ := json.Marshal(s)
		return b
	}
	cases := []struct {
		name string
		spec []byte
		want string
	}{
		{"empty", nil, "unexpected end of JSON"},
		{"not JSON", []byte("alias=buildbox\n"), "invalid character"},
		{"over the bound", []byte(`{"alias":"` + strings.Repeat("x", maxSpec) + `"}`), "over 1048576 bytes"},
		{"no alias", good(func(s *masterSpec) { s.Alias = "" }), "names no host"},
		{"no ControlPath", good(func(s *masterSpec) { s.ControlPath = "" }), "no ControlPath"},
		{"bad level", good(func(s *masterSpec) { s.LogLevel = "LOUD" }), "unknown --log-level"},
		// The true reason first: nothing listens, before any word on
		// identities (there are none to offer either).
		{"cannot connect", good(func(*masterSpec) {}), "cannot connect to buildbox (127.0.0.1:1): Connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			m, st := runMaster(t, home, c.spec)
			if msg, _ := m["error"].(string); !strings.Contains(msg, c.want) {
				t.Errorf("readiness %v; want an error with %q", m, c.want)
			}
			// A refused connection may heal: it is no verdict.
			if c.name == "cannot connect" && (m["permanent"] == true || !strings.Contains(fmt.Sprint(m["hint"]), "nothing listens at 127.0.0.1:1")) {
				t.Errorf("the failure lost its hint or has the wrong verdict: %v", m)
			}
			// Only the server's answer is the session's failure; the
			// rest leave it to connect directly.
			if local := m["local"] == true; local != (c.name != "cannot connect") {
				t.Errorf("local = %v: %v", local, m)
			}
			if st.ExitCode() == 0 {
				t.Errorf("the master exited 0")
			}
			t.Logf("%s: %v in %s", c.name, m["error"], time.Since(start).Round(time.Millisecond))
		})
	}
	// The log of the one that got far enough to open it.
	log, err := os.ReadFile(master.LogPath(filepath.Join(home, ".local", "state", "m2m-ssh"), filepath.Join(home, "cm")))
	if err != nil || !strings.Contains(string(log), "cannot start the shared connection") {
		t.Errorf("the master's log: %v\n%s", err, log)
	}
	if fi, err := os.Stat(filepath.Join(home, ".local", "state", "m2m-ssh")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state directory: %v %v", fi.Mode(), err)
	}
}

// serve-master started by hand, without its descriptors, says what it is
// and exits.
func TestMasterByHand(t *testing.T) {
	cmd := m2mCommand([]string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}, masterCommand)
	out := sshtest.Within(t, masterBound, func() string {
		b, _ := cmd.CombinedOutput()
		return string(b)
	})
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(out, "started by m2m-ssh itself") {
		t.Fatalf("serve-master by hand: %v, %q", cmd.ProcessState, out)
	}
}
