package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// invocation is a command line as the grammar read it: the subcommand,
// the options in the order given, the alias and the remote command.
type invocation struct {
	sub      subcommand
	opts     []option
	alias    string
	hasAlias bool
	rest     []string // the remote command, after ALIAS
	help     bool
	version  bool
}

// option is one flag given, under its first name, with its value ("true"
// for a bool given bare).
type option struct {
	flag  cli.Flag
	name  string
	value string
}

// serves reports whether the invocation is what an MCP host starts: its
// stdout is the host's protocol stream.
func (inv *invocation) serves() bool {
	if inv == nil {
		return true // nothing is known: the safe answer
	}
	if !inv.sub.serves {
		return false
	}
	for _, o := range inv.opts {
		if inv.sub.Name == "demo" && o.name == "walkthrough" && o.value != "false" {
			return false
		}
	}
	return true
}

// argv is the invocation as urfave/cli reads it: the subcommand, every
// option as --name=value, the alias, and the remote command.
func (inv *invocation) argv(prog string) []string {
	argv := []string{prog}
	if inv.sub.Name != "" {
		argv = append(argv, inv.sub.Name)
	}
	if inv.help {
		return append(argv, "--help")
	}
	if inv.version {
		return []string{prog, "--version"}
	}
	for _, o := range inv.opts {
		argv = append(argv, "--"+o.name+"="+o.value)
	}
	if inv.hasAlias {
		argv = append(argv, inv.alias)
	}
	// After ALIAS urfave/cli reads no flags; a -- is added only where
	// the command itself starts with one, which parseSession takes off.
	if len(inv.rest) > 0 && inv.rest[0] == "--" {
		argv = append(argv, "--")
	}
	return append(argv, inv.rest...)
}

// parseCommandLine reads args (without the program's name) as OpenSSH
// reads its own, with m2m-ssh's subcommands in front:
//
//	m2m-ssh [options] [SUBCOMMAND] [options] [[user@]ALIAS [options] [--] [COMMAND...]]
//
// Options are taken wherever they come before the remote command: before
// the subcommand, after it, and after ALIAS up to the first argument that
// is not an option, or "--" (as 'ssh host -p 2222 cmd' takes -p). An
// option that the subcommand does not take is an error, never dropped.
// The first argument that is not an option names a subcommand if it is
// one, else it is ALIAS. The invocation is returned with the error when
// the subcommand is known, so that the caller knows whether a host is
// listening on stdout.
func parseCommandLine(table []subcommand, args []string) (*invocation, error) {
	inv := &invocation{sub: table[0]}
	known := map[string]cli.Flag{}
	for _, s := range table {
		for _, f := range s.Flags {
			for _, n := range f.Names() {
				known[n] = f
			}
		}
	}
	subChosen := false
	var err error
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			if !inv.hasAlias && i < len(args) {
				inv.alias, inv.hasAlias = args[i], true
				i++
			}
			inv.rest = args[i:]
			break
		}
		if len(a) > 1 && a[0] == '-' {
			var o option
			var used int
			o, used, err = readOption(known, args[i:])
			if err != nil {
				break
			}
			i += used - 1
			switch o.name {
			case "help":
				inv.help = true
			case "version":
				inv.version = true
			default:
				inv.opts = append(inv.opts, o)
			}
			continue
		}
		if inv.hasAlias {
			inv.rest = args[i:]
			break
		}
		if !subChosen {
			subChosen = true
			if s, ok := findSubcommand(table, a); ok {
				inv.sub = s
				continue
			}
		}
		inv.alias, inv.hasAlias = a, true
	}
	if err != nil {
		return inv, err
	}
	if inv.help || inv.version {
		return inv, nil
	}
	if inv.hasAlias {
		if strings.HasPrefix(inv.alias, "-") {
			// As ssh: a host name never starts with -.
			return inv, fmt.Errorf("ALIAS %q starts with -", inv.alias)
		}
		if _, ok := findSubcommand(table, inv.alias); ok && inv.sub.Name == "" {
			return inv, hinted{fmt.Errorf("ALIAS %s is also a subcommand", inv.alias), "write it with its user, as in 'm2m-ssh user@" + inv.alias + "', to reach the host"}
		}
	}
	for i, o := range inv.opts {
		if !takes(inv.sub, o.name) {
			return inv, notHere(table, inv.sub, o.name)
		}
		if inv.opts[i], err = checkValue(o); err != nil {
			return inv, err
		}
	}
	return inv, nil
}

func findSubcommand(table []subcommand, name string) (subcommand, bool) {
	for _, s := range table[1:] {
		if s.Name == name {
			return s, true
		}
	}
	return subcommand{}, false
}

// takes reports whether s has the flag named name.
func takes(s subcommand, name string) bool {
	for _, f := range s.Flags {
		if f.Names()[0] == name {
			return true
		}
	}
	return false
}

// spell is a flag's name as the command line spells it.
func spell(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// what names a subcommand in a message.
func what(s subcommand) string {
	if s.Name == "" {
		return "a connection"
	}
	return s.Name
}

// notHere is the error for a flag given to a subcommand that does not
// take it: it says which ones do.
func notHere(table []subcommand, s subcommand, name string) error {
	var where []string
	for _, t := range table {
		if takes(t, name) {
			where = append(where, "'m2m-ssh "+strings.TrimSpace(t.Name+" "+spell(name))+" ...'")
		}
	}
	help := "'m2m-ssh " + strings.TrimSpace(s.Name+" --help") + "' lists " + what(s) + "'s flags"
	if s.Name == "" {
		help = "'m2m-ssh --help' lists a connection's flags"
	}
	return hinted{fmt.Errorf("%s does not apply to %s", spell(name), what(s)),
		"it is for " + strings.Join(where, " or ") + "; " + help}
}

// readOption reads the option at args[0], and its value from args[1] when
// it takes one and has none attached. It returns how many arguments it
// used. Long names take -name or --name, with =value or the next
// argument; a one-letter flag also takes its value attached, as ssh's
// -p2222 and -oUser=bob.
func readOption(known map[string]cli.Flag, args []string) (option, int, error) {
	a := args[0]
	body := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	name, value, hasValue := strings.Cut(body, "=")
	switch name {
	case "h", "help":
		return option{name: "help"}, 1, nil
	case "V", "version":
		return option{name: "version"}, 1, nil
	}
	f, ok := known[name]
	if !ok && !strings.HasPrefix(a, "--") && len(body) > 1 {
		// -Fconfig, -p2222: a one-letter flag with its value attached.
		if g, one := known[body[:1]]; one && !isBool(g) {
			f, name, value, hasValue, ok = g, body[:1], body[1:], true, true
		}
	}
	if !ok {
		return option{}, 0, unknownFlag(known, a, name)
	}
	o := option{flag: f, name: f.Names()[0]}
	switch {
	case isBool(f):
		o.value = "true"
		if hasValue {
			if _, err := strconv.ParseBool(value); err != nil {
				return option{}, 0, hinted{fmt.Errorf("%s takes no value (given %q)", spell(o.name), value), "give " + spell(o.name) + " alone"}
			}
			o.value = value
		}
		return o, 1, nil
	case hasValue:
		o.value = value
		return o, 1, nil
	case len(args) > 1:
		o.value = args[1]
		return o, 2, nil
	}
	return option{}, 0, hinted{fmt.Errorf("%s needs a value", spell(o.name)), "give it as " + spell(o.name) + " " + valueName(f)}
}

func isBool(f cli.Flag) bool {
	_, ok := f.(*cli.BoolFlag)
	return ok
}

// valueName is what a flag's help calls its value.
func valueName(f cli.Flag) string {
	if u, ok := f.(cli.DocGenerationFlag); ok {
		if n, _ := unquoteUsage(u.GetUsage()); n != "" {
			return n
		}
	}
	return "VALUE"
}

// unquoteUsage finds the `name` in a flag's usage, as urfave/cli does.
func unquoteUsage(usage string) (string, string) {
	start := strings.IndexByte(usage, '`')
	if start < 0 {
		return "", usage
	}
	end := strings.IndexByte(usage[start+1:], '`')
	if end < 0 {
		return "", usage
	}
	return usage[start+1 : start+1+end], usage
}

// checkValue refuses a value the flag's type cannot hold, in the same
// words whichever subcommand it was given to. A number is decimal, as
// ssh reads -p 022, and is passed on so (Go's flag package would read a
// leading 0 as octal).
func checkValue(o option) (option, error) {
	switch o.flag.(type) {
	case *cli.IntFlag:
		n, err := strconv.ParseInt(o.value, 10, strconv.IntSize)
		if err != nil {
			return o, fmt.Errorf("%s %q is not a whole number", spell(o.name), o.value)
		}
		o.value = strconv.FormatInt(n, 10)
	case *cli.DurationFlag:
		if _, err := time.ParseDuration(o.value); err != nil {
			return o, fmt.Errorf("%s %q is not a duration: give it with a unit, as in 30s or 2m", spell(o.name), o.value)
		}
	}
	return o, nil
}

// maxSuggestDistance is how many edits away a flag or subcommand name may
// be to be suggested: a typo, not another word.
const maxSuggestDistance = 2

// unknownFlag says a flag is not m2m-ssh's, and suggests the nearest one.
func unknownFlag(known map[string]cli.Flag, given, name string) error {
	err := fmt.Errorf("unknown flag %s", given)
	if name == "v" || name == "vv" || name == "vvv" {
		return hinted{err, "ssh's -v is --log-level DEBUG here"}
	}
	names := make([]string, 0, len(known))
	for n := range known {
		if len(n) > 1 {
			names = append(names, n)
		}
	}
	if s, ok := nearest(name, names); ok {
		return hinted{err, "did you mean " + spell(s) + "?"}
	}
	return hinted{err, "'m2m-ssh --help' lists the flags"}
}

// nearest is the name in names closest to s, when it is a typo away.
// Ties go to the first in sorted order, so the suggestion is stable.
func nearest(s string, names []string) (string, bool) {
	best, bestD := "", maxSuggestDistance+1
	for _, n := range names {
		d := editDistance(strings.ToLower(s), n)
		if d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	// A one- or two-letter word is a typo of anything that short.
	if bestD > maxSuggestDistance || bestD >= len(s) {
		return "", false
	}
	return best, true
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// subcommandLike is the subcommand name is a typo of, if any: for "did
// you mean" when an alias that does not resolve is one.
func subcommandLike(name string) (string, bool) {
	var names []string
	for _, s := range subcommands()[1:] {
		names = append(names, s.Name)
	}
	return nearest(name, names)
}
