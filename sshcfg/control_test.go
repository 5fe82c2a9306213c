package sshcfg

import (
	"errors"
	"testing"
	"time"
)

// TestControl covers what the differential test cannot: the fields the
// rest of m2m-ssh reads, and values ssh refuses.
func TestControl(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []string
		path    string
		master  ControlMaster
		persist bool
		timeout time.Duration
		err     bool
		token   bool // the error is a *TokenError
	}{
		{name: "defaults"},
		{name: "path", opts: []string{"ControlPath=~/cm-%r@%h:%p"}, path: testHome + "/cm-tester@nothing:22"},
		{name: "none", opts: []string{"ControlPath=None", "ControlMaster=auto"}, master: ControlMasterAuto},
		{name: "percent", opts: []string{"ControlPath=/s/100%%"}, path: "/s/100%"},
		{name: "jump token is not 9.2's", opts: []string{"ControlPath=/s/%j"}, err: true, token: true},
		{name: "unknown token", opts: []string{"ControlPath=/s/%T"}, err: true, token: true},
		{name: "lone percent", opts: []string{"ControlPath=/s/%"}, err: true, token: true},
		{name: "unset variable", opts: []string{"ControlPath=${NOPE}/s"}, err: true},
		{name: "autoask", opts: []string{"ControlMaster=AUTOASK"}, master: ControlMasterAutoAsk},
		{name: "bad master", opts: []string{"ControlMaster=sometimes"}, err: true},
		{name: "persist yes", opts: []string{"ControlPersist=yes"}, persist: true},
		{name: "persist zero", opts: []string{"ControlPersist=0"}, persist: true},
		{name: "persist time", opts: []string{"ControlPersist=1h5s"}, persist: true, timeout: time.Hour + 5*time.Second},
		{name: "persist case matters", opts: []string{"ControlPersist=YES"}, err: true},
		{name: "persist none is not a time", opts: []string{"ControlPersist=none"}, err: true},
		{name: "first wins", opts: []string{"ControlPersist=no", "ControlPersist=yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := Resolve("nothing", testOptions("none", tc.opts...))
			if tc.err {
				var te *TokenError
				if err == nil || tc.token != errors.As(err, &te) {
					t.Fatalf("err = %v, want an error (token error: %v)", err, tc.token)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.ControlPath != tc.path || tg.ControlMaster != tc.master ||
				tg.ControlPersist != tc.persist || tg.ControlPersistTimeout != tc.timeout {
				t.Errorf("got %q %v %v %v, want %q %v %v %v", tg.ControlPath, tg.ControlMaster,
					tg.ControlPersist, tg.ControlPersistTimeout, tc.path, tc.master, tc.persist, tc.timeout)
			}
		})
	}
}

func TestControlMasterRides(t *testing.T) {
	for _, tc := range []struct {
		m             ControlMaster
		shown         string
		rides, starts bool
	}{
		{ControlMasterNo, "false", true, false},
		{ControlMasterYes, "true", false, true},
		{ControlMasterAsk, "ask", false, true},
		{ControlMasterAuto, "auto", true, true},
		{ControlMasterAutoAsk, "autoask", true, true},
	} {
		if tc.m.String() != tc.shown || tc.m.Rides() != tc.rides || tc.m.Starts() != tc.starts {
			t.Errorf("%d: %s %v %v, want %s %v %v", tc.m, tc.m, tc.m.Rides(), tc.m.Starts(), tc.shown, tc.rides, tc.starts)
		}
	}
}
