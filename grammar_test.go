package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestGrammar is the command line's grammar as a table: what each
// command line means, as the argv urfave/cli is given, or the error.
func TestGrammar(t *testing.T) {
	for _, c := range []struct {
		args string
		argv string // "" when an error is wanted
		err  string
	}{
		// Global flags before a subcommand are the subcommand's.
		{"-F cfg resolve box", "resolve --F=cfg box", ""},
		{"-F cfg doctor box", "doctor --F=cfg box", ""},
		{"resolve -F cfg box", "resolve --F=cfg box", ""},
		// Options after ALIAS, up to the first non-option, as ssh.
		{"box -p 2222 cmd -x", "--port=2222 box cmd -x", ""},
		{"box -l bob -F cfg -- cmd", "--username=bob --F=cfg box cmd", ""},
		{"box cmd -p 2222", "box cmd -p 2222", ""},
		{"box -- -p 2222", "box -p 2222", ""},
		{"box -- -- x", "box -- -- x", ""},
		{"bench -F cfg", "--F=cfg bench", ""},
		// Attached values, =values, single-dash long names.
		{"-Fcfg -oUser=bob -p2200 box", "--F=cfg --o=User=bob --port=2200 box", ""},
		{"--log-level=DEBUG -log-file f box", "--log-level=DEBUG --log-file=f box", ""},
		{"-o ProxyJump=a,b box", "--o=ProxyJump=a,b box", ""},
		{"-A box", "--A=true box", ""},
		// Numbers are decimal, as ssh's: -p 022 is port 22.
		{"-p 022 box", "--port=22 box", ""},
		{"-A=false box", "--A=false box", ""},
		// A value that looks like a flag is the flag's value, as in ssh.
		{"-o -F box", "--o=-F box", ""},
		// -- before ALIAS ends the options; the next word is ALIAS.
		{"-- box cmd", "box cmd", ""},
		{"-- resolve", "", "ALIAS resolve is also a subcommand"},
		{"-- -x", "", `ALIAS "-x" starts with -`},
		// A subcommand only as the first non-option word.
		{"box doctor", "box doctor", ""},
		{"control box check", "control box check", ""},
		{"-O check box", "--O=check box", ""},
		{"config box --for vscode", "config --for=vscode box", ""},
		{"--for vscode config box", "config --for=vscode box", ""},
		{"demo --walkthrough", "demo --walkthrough=true", ""},
		// Seed mode.
		{"--host h --port 8022", "--host=h --port=8022", ""},
		// Help and version, wherever before the command.
		{"doctor box --help", "doctor --help", ""},
		{"-h", "--help", ""},
		{"box -V", "--version", ""},
		{"box -- --help", "box --help", ""},
		// Errors: unknown, misplaced, without a value, a bad value.
		{"--log-levl DEBUG box", "", "unknown flag --log-levl"},
		{"--reconnect-timeout 5s doctor box", "", "--reconnect-timeout does not apply to doctor"},
		{"doctor box --max-frame 1MiB", "", "--max-frame does not apply to doctor"},
		{"--for vscode box", "", "--for does not apply to a connection"},
		{"--walkthrough box", "", "--walkthrough does not apply to a connection"},
		{"demo -F cfg", "", "-F does not apply to demo"},
		{"resolve box --subsystem x", "", "--subsystem does not apply to resolve"},
		{"box -F", "", "-F needs a value"},
		{"--port x box", "", `--port "x" is not a whole number`},
		{"--max-reconnects 1.5 box", "", `--max-reconnects "1.5" is not a whole number`},
		{"--reconnect-timeout 5 box", "", `--reconnect-timeout "5" is not a duration`},
		{"-A=maybe box", "", `-A takes no value (given "maybe")`},
		{"-Z box", "", "unknown flag -Z"},
	} {
		t.Run(c.args, func(t *testing.T) {
			inv, err := parseCommandLine(subcommands(), strings.Fields(c.args))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(inv.argv("m2m-ssh")[1:], " "); got != c.argv {
				t.Errorf("argv %q, want %q", got, c.argv)
			}
		})
	}
}

// TestGrammarServes checks which command lines are an MCP host's: those
// answer a usage error on stdout as JSON-RPC.
func TestGrammarServes(t *testing.T) {
	for args, want := range map[string]bool{
		"box": true, "--host h": true, "demo": true,
		"demo --walkthrough": false, "resolve box": false, "doctor box": false, "config box": false,
	} {
		inv, err := parseCommandLine(subcommands(), strings.Fields(args))
		if err != nil {
			t.Fatal(err)
		}
		if inv.serves() != want {
			t.Errorf("%q: serves = %v, want %v", args, inv.serves(), want)
		}
	}
	var unknown *invocation
	if !unknown.serves() {
		t.Error("a command line not understood must be taken as a host's")
	}
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct {
		word, want string
		ok         bool
	}{
		{"docter", "doctor", true}, {"resolv", "resolve", true}, {"confg", "config", true}, {"dmeo", "demo", true},
		{"buildbox", "", false}, {"do", "", false}, {"x", "", false},
	} {
		if got, ok := subcommandLike(c.word); got != c.want || ok != c.ok {
			t.Errorf("subcommandLike(%q) = %q, %v; want %q, %v", c.word, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseCommandLine checks that the grammar never panics, and that
// the argv it gives urfave/cli is read there as the grammar read the
// command line: the same flag values, ALIAS, and the remote command once
// parseSession has taken off a leading --.
func FuzzParseCommandLine(f *testing.F) {
	for _, s := range []string{"-F cfg resolve box", "box -p 2222 cmd -x", "-Fcfg -oUser=bob box", "-- box cmd", "config box --for vscode", "--log-levl x", "-A=false -h", "box -- -- x", "box -- -p 1", "control box check"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		inv, err := parseCommandLine(subcommands(), args)
		if err != nil || inv.help || inv.version {
			return
		}
		argv := inv.argv("m2m-ssh")[1:]
		if inv.sub.Name != "" {
			argv = argv[1:]
		}
		fs := flag.NewFlagSet("m2m-ssh", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		for _, fl := range inv.sub.Flags {
			if err := fl.Apply(fs); err != nil {
				t.Fatal(err)
			}
		}
		if err := fs.Parse(argv); err != nil {
			t.Fatalf("%q gives urfave/cli %q, which it refuses: %v", args, argv, err)
		}
		for _, o := range inv.opts {
			// A string flag holds the last value given, as written.
			if _, ok := o.flag.(*cli.StringFlag); ok && isLast(inv.opts, o) {
				if got := fs.Lookup(o.name).Value.String(); got != o.value {
					t.Fatalf("%q: urfave/cli reads %s as %q from %q; want %q", args, spell(o.name), got, argv, o.value)
				}
			}
		}
		got := fs.Args()
		var want []string
		if inv.hasAlias {
			want = append(want, inv.alias)
		}
		want = append(want, inv.rest...)
		if len(got) > 1 && got[1] == "--" {
			got = append(got[:1:1], got[2:]...) // parseSession's
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%q: urfave/cli reads ALIAS and command %q from %q; want %q", args, got, argv, want)
		}
	})
}

func isLast(opts []option, o option) bool {
	for i := len(opts) - 1; i >= 0; i-- {
		if opts[i].name == o.name {
			return opts[i] == o
		}
	}
	return false
}
