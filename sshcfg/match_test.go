package sshcfg

import (
	"strings"
	"testing"
	"time"
)

func TestHostLine(t *testing.T) {
	for _, tc := range []struct {
		host     string
		patterns []string
		want     bool
	}{
		{"a", []string{"a", "b"}, true},
		{"c", []string{"a", "b"}, false},
		{"a", []string{"*", "!a"}, false},
		{"a", []string{"!a", "*"}, false},
		{"b", []string{"!a", "*"}, true},
		{"b", []string{"!a"}, false},
		{"a,b", []string{"a,b"}, true}, // Host lists are space-separated only
		{"a", []string{"a,b"}, false},
	} {
		if got := hostLine(tc.host, tc.patterns); got != tc.want {
			t.Errorf("hostLine(%q, %q) = %v, want %v", tc.host, tc.patterns, got, tc.want)
		}
	}
}

// TestMatchExec checks what a Match exec command is given and when it is
// not run at all.
func TestMatchExec(t *testing.T) {
	text := `Host box
  HostName box.example.com
  Port 2200
Match exec "check %h %p %r %n %u %d %%"
  User viaexec
Match host nomatch exec "never run"
  Port 1
`
	var ran []string
	o := testOptions(writeConfig(t, text))
	o.Exec = func(cmd string) (bool, error) {
		ran = append(ran, cmd)
		return true, nil
	}
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "commands", ran, []string{"check box.example.com 2200 tester box tester " + testHome + " %"})
	eq(t, "user", tg.User, "viaexec")
	eq(t, "port", tg.Port, 2200)
}

// TestMatchExecShell runs real commands through the shell, as ssh does.
func TestMatchExecShell(t *testing.T) {
	text := `Match exec "exit 0"
  User zero
Match exec "exit 3"
  Port 3333
Match exec "kill -9 $$"
  IdentityFile ~/.ssh/killed
`
	o := testOptions(writeConfig(t, text))
	o.Exec = nil
	o.Getenv = func(k string) (string, bool) {
		if k == "SHELL" {
			return "/bin/sh", true
		}
		return "", false
	}
	var warnings strings.Builder
	o.Logger = textLogger(&warnings)
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "user", tg.User, "zero")
	eq(t, "port", tg.Port, 22)
	if tg.Set("identityfile") {
		t.Errorf("a command killed by a signal matched")
	}
	if !strings.Contains(warnings.String(), "line=5") {
		t.Errorf("no warning for the killed command:\n%s", warnings.String())
	}
}

// TestMatchExecTimeout checks that a hanging command does not hang
// Resolve. It changes execTimeout, so it does not run in parallel.
func TestMatchExecTimeout(t *testing.T) {
	defer func(d time.Duration) { execTimeout = d }(execTimeout)
	execTimeout = 200 * time.Millisecond
	o := testOptions(writeConfig(t, "Match exec \"sleep 30\"\n  User late\n"))
	o.Exec = nil
	var warnings strings.Builder
	o.Logger = textLogger(&warnings)
	start := time.Now()
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Resolve took %s", d)
	}
	eq(t, "user", tg.User, "tester")
	if !strings.Contains(warnings.String(), "no answer within") {
		t.Errorf("no timeout warning:\n%s", warnings.String())
	}
}

func TestMatchLineErrors(t *testing.T) {
	for _, line := range []string{
		"Match",
		"Match host",
		"Match all host x",
		"Match canonical final all extra",
		"Match bogus x",
		"Match # only a comment",
		`Match exec "%Z"`,
	} {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			var warnings strings.Builder
			o := testOptions(writeConfig(t, line+"\n  User wrong\nHost *\n  Port 2200\n"))
			o.Logger = textLogger(&warnings)
			tg, err := Resolve("x", o)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "user", tg.User, "tester")
			eq(t, "port after the bad Match", tg.Port, 2200)
			if !strings.Contains(warnings.String(), "line=1") {
				t.Errorf("no warning for line 1:\n%s", warnings.String())
			}
		})
	}
}
