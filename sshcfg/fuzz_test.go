package sshcfg

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzResolve feeds arbitrary configuration text to Resolve: it must
// neither panic nor hang, and whatever it resolves must print. Match exec
// goes to a hook, so fuzz input never runs a command.
func FuzzResolve(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.conf"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "host")
	}
	f.Add([]byte("Host *\n  Include *\nMatch exec \"%h\" host x\n"), "user@x")
	f.Add([]byte("Host a?*?*?*?*?*?*?*?*?*?*?*?*?*b\n"), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac")
	home := f.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, config []byte, alias string) {
		conf := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(conf, config, 0o600); err != nil {
			t.Fatal(err)
		}
		tg, err := Resolve(alias, Options{
			ConfigFile:   conf,
			Home:         home,
			LocalUser:    "fuzz",
			SystemConfig: filepath.Join(home, "ssh_config"),
			Logger:       logger,
			Exec:         func(string) (bool, error) { return len(config)%2 == 0, nil },
			Getenv:       func(k string) (string, bool) { return "v-" + k, len(k)%2 == 0 },
			Resolver:     &fakeDNS{hosts: map[string][]string{"host.example.test.": {"192.0.2.1"}}},
		})
		if err != nil {
			return
		}
		if err := tg.WriteConfig(&bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzKnownHostsCommandArgv feeds arbitrary KnownHostsCommand text and
// token values to the splitter and expander: no panic, argv[0] as split
// (never expanded), and an error rather than an empty command.
func FuzzKnownHostsCommandArgv(f *testing.F) {
	f.Add(`/usr/bin/printf "%%s %H %I %t" '%h with spaces' #x \"q`, "[h]:2222", "ssh-ed25519")
	f.Add(`a ${HOME} ${UNSET} %z %`, "h", "")
	f.Add(`"unterminated`, "", "")
	f.Fuzz(func(t *testing.T, command, name, keyType string) {
		tg := &Target{KnownHostsCommand: command, connTokens: tokens{'h': "host", 'p': "22"},
			getenv: func(k string) (string, bool) { return "/home/x", k == "HOME" }}
		argv, err := tg.KnownHostsCommandArgv(name, "HOSTNAME", keyType, "SHA256:x", "AAAA")
		if err != nil {
			return
		}
		if len(argv) == 0 {
			t.Fatal("an empty command without an error")
		}
		words, werr := splitWords(command, false)
		if werr != nil || words[0] != argv[0] || len(words) != len(argv) {
			t.Fatalf("argv %q does not follow the split %q (%v)", argv, words, werr)
		}
	})
}
