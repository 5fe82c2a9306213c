// Command hostile is a remote MCP server that misbehaves on purpose, one
// way per mode, for the tests of what m2m-ssh promises whatever the other
// side sends: every request answered, stdout carrying only frames, memory
// bounded, nothing left running. It runs behind the test sshd:
//
//	hostile MODE [ARG...]
//
// Each mode lives in the file of the behaviour it attacks and registers
// itself in modes.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

// modes are the behaviours, by name; each returns the exit status.
var modes = map[string]func(args []string) int{}

func register(name string, f func(args []string) int) {
	if _, dup := modes[name]; dup {
		panic("hostile: mode registered twice: " + name)
	}
	modes[name] = f
}

func main() {
	if len(os.Args) < 2 || modes[os.Args[1]] == nil {
		names := make([]string, 0, len(modes))
		for n := range modes {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: hostile MODE [ARG...]; modes: %s\n", strings.Join(names, " "))
		os.Exit(2)
	}
	os.Exit(modes[os.Args[1]](os.Args[2:]))
}

// lines calls f with each line the host sends (without its newline) until
// stdin ends or f returns false.
func lines(f func(line string) bool) {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		if !f(sc.Text()) {
			return
		}
	}
}

// out writes s and a newline to stdout, unbuffered.
func out(s string) { os.Stdout.WriteString(s + "\n") }
