//go:build unix

package transport

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// A master that Start said is up, but that accepts and never says hello,
// does not hold the connect: the hello is bounded as every other one is.
func TestSharingStartedMasterSilent(t *testing.T) {
	dir, err := os.MkdirTemp("", "m2m-mux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "cm")
	start := func(context.Context) error {
		// Listening, never serving: the kernel accepts the connect into
		// the backlog and nothing is ever written.
		l, err := mux.Listen(path)
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	}
	d := &directCounter{err: errors.New("must not be called")}
	s := &Sharing{Target: &sshcfg.Target{Alias: "box", ControlPath: path, ControlMaster: sshcfg.ControlMasterAuto},
		Program: Program{Command: "echo"}, Direct: d.direct, Start: start}
	err = sshtest.Within(t, testBound, func() error {
		_, err := s.Connect(context.Background())
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Connect = %v; want the silent master's failure", err)
	}
}
