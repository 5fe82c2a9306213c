package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Modes that outlive their session, for the tests that m2m-ssh leaves
// nothing running on the server and ends at a signal whatever the remote
// does. Each writes its pid to PIDFILE first.
//
//	sig-linger PIDFILE     polite until stdin ends; then stays, ignoring SIGHUP and SIGPIPE
//	sig-trap-term PIDFILE  sig-linger that also traps SIGTERM: only SIGKILL ends it
//	sig-deaf PIDFILE       polite until a request for "deaf", which it answers; then reads 1 MiB more and never again
//
// sig-linger and sig-trap-term create PIDFILE.eof when stdin ends;
// sig-deaf creates PIDFILE.read when it has stopped reading.
func init() {
	register("sig-linger", func(args []string) int { return linger(args, false) })
	register("sig-trap-term", func(args []string) int { return linger(args, true) })
	register("sig-deaf", deaf)
}

// lifetime bounds how long a mode that stays outlives its session: a
// test that fails to end it does not leave it running for ever.
const lifetime = 2 * time.Minute

// deafRead is how much of what follows "deaf" sig-deaf reads: enough to
// know a large frame is on its way, far less than one.
const deafRead = 1 << 20

func linger(args []string, trapTerm bool) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: hostile sig-linger|sig-trap-term PIDFILE")
		return 2
	}
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	if trapTerm {
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		go func() {
			for range terms {
				fmt.Fprintln(os.Stderr, "hostile: caught SIGTERM; staying")
			}
		}()
	}
	if err := writePid(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serve(nil)
	os.WriteFile(args[0]+".eof", nil, 0o600)
	fmt.Fprintln(os.Stderr, "hostile: stdin closed; staying")
	time.Sleep(lifetime)
	return 0
}

func deaf(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: hostile sig-deaf PIDFILE")
		return 2
	}
	if err := writePid(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serve(func(r request, line string) bool {
		if r.Method != "deaf" {
			return false
		}
		out(result(r.ID, r.Method))
		// What follows is the start of a large frame: the sender is
		// in the middle of it when the marker appears.
		io.CopyN(io.Discard, os.Stdin, deafRead)
		os.WriteFile(args[0]+".read", nil, 0o600)
		time.Sleep(lifetime)
		os.Exit(0)
		return true
	})
	return 0
}

// writePid writes the process's pid to path whole: a reader never sees
// part of it.
func writePid(path string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
