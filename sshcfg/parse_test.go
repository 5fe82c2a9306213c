package sshcfg

import (
	"os"
	"strings"
	"testing"

	"github.com/kevinburke/ssh_config"
)

func TestLexLine(t *testing.T) {
	for _, tc := range []struct {
		in, keyword, rest string
		ok                bool
	}{
		{"Host foo", "host", "foo", true},
		{"  HostName=example.com", "hostname", "example.com", true},
		{"Port = 22", "port", "22", true},
		{"User\t\tbob\r", "user", "bob", true},
		{"Key==value", "key", "=value", true},
		{"IdentityFile ~/.ssh/key#1 # comment", "identityfile", "~/.ssh/key#1 # comment", true},
		{`ProxyCommand "ssh" -W x "y"`, "proxycommand", `"ssh" -W x "y"`, true},
		{"Match exec \"test -f x\" host y", "match", "exec \"test -f x\" host y", true},
		{"Include conf.d/*", "include", "conf.d/*", true},
		{"# comment", "", "", false},
		{"   # indented comment", "", "", false},
		{"", "", "", false},
		{" \t\r\f", "", "", false},
		{"Port 22\x00garbage", "port", "22", true},
		{"NoValue", "novalue", "", true},
	} {
		kw, rest, ok, err := lexLine(tc.in)
		if err != nil {
			t.Errorf("lexLine(%q): %v", tc.in, err)
			continue
		}
		if kw != tc.keyword || rest != tc.rest || ok != tc.ok {
			t.Errorf("lexLine(%q) = %q, %q, %v; want %q, %q, %v", tc.in, kw, rest, ok, tc.keyword, tc.rest, tc.ok)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"a b\tc", []string{"a", "b", "c"}, false},
		{`"a b" 'c d'`, []string{"a b", "c d"}, false},
		{`pre"quoted part"post`, []string{"prequoted partpost"}, false},
		{`a\ b \"c\" \\`, []string{"a b", `"c"`, `\`}, false},
		{`"a\ b"`, []string{`a\ b`}, false},
		{`a#b #comment`, []string{"a#b"}, false},
		{`"#not a comment"`, []string{"#not a comment"}, false},
		{`""`, []string{""}, false},
		{`"unclosed`, nil, true},
		{`'also unclosed`, nil, true},
	} {
		got, err := splitArgs(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("splitArgs(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		eq(t, "splitArgs("+tc.in+")", got, tc.want)
	}
}

func TestNextWord(t *testing.T) {
	var words []string
	rest := `host=a,b  exec "test -n x" user  = bob`
	for {
		w, r, ok := nextWord(rest)
		if !ok || w == "" {
			break
		}
		words = append(words, w)
		rest = r
	}
	eq(t, "words", words, []string{"host", "a,b", "exec", "test -n x", "user", "bob"})
}

// TestClosesLibraryGaps shows each gap of kevinburke/ssh_config that the
// issue names, and that sshcfg closes it.
func TestClosesLibraryGaps(t *testing.T) {
	t.Run("one unsupported line fails the whole file", func(t *testing.T) {
		text := "Match exec \"true\"\n  User viaexec\nHost box\n  Port 2200\n"
		if _, err := ssh_config.DecodeBytes([]byte(text)); err == nil {
			t.Fatal("the library now reads Match exec; this gap is closed upstream")
		}
		o := testOptions(writeConfig(t, text))
		o.Exec = func(cmd string) (bool, error) { return cmd == "true", nil }
		tg, err := Resolve("box", o)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "user", tg.User, "viaexec")
		eq(t, "port", tg.Port, 2200)
	})
	t.Run("? matches zero characters", func(t *testing.T) {
		cfg, err := ssh_config.DecodeBytes([]byte("Host web-?\n  User web\n"))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := cfg.Get("web-", "User"); v != "web" {
			t.Fatal("the library's ? now needs one character; this gap is closed upstream")
		}
		tg, err := Resolve("web-", testOptions(writeConfig(t, "Host web-?\n  User web\n")))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "user", tg.User, "tester")
	})
	t.Run("values come back unexpanded", func(t *testing.T) {
		text := "Host box\n  IdentityFile ~/.ssh/id_%h_%r\n  User me\n"
		cfg, err := ssh_config.DecodeBytes([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "library", mustGet(t, cfg, "box", "IdentityFile"), "~/.ssh/id_%h_%r")
		tg, err := Resolve("box", testOptions(writeConfig(t, text)))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "sshcfg", tg.IdentityFiles, []string{testHome + "/.ssh/id_box_me"})
	})
	t.Run("yes and no are case-sensitive", func(t *testing.T) {
		text := "Host box\n  IdentitiesOnly YES\n"
		us := &ssh_config.UserSettings{}
		us.ConfigFinder(func() string { return writeConfig(t, text) })
		if _, err := us.GetStrict("box", "IdentitiesOnly"); err == nil {
			t.Fatal("the library now accepts YES; this gap is closed upstream")
		}
		tg, err := Resolve("box", testOptions(writeConfig(t, text)))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "identitiesonly", tg.IdentitiesOnly, true)
	})
	t.Run("IdentityFile default is SSH-1's", func(t *testing.T) {
		eq(t, "library default", ssh_config.Default("IdentityFile"), "~/.ssh/identity")
		tg, err := Resolve("box", testOptions("none"))
		if err != nil {
			t.Fatal(err)
		}
		if len(tg.IdentityFiles) != 7 || !strings.HasSuffix(tg.IdentityFiles[0], "/.ssh/id_rsa") {
			t.Errorf("identity files %q, want OpenSSH's seven defaults", tg.IdentityFiles)
		}
	})
}

func mustGet(t *testing.T, cfg *ssh_config.Config, alias, key string) string {
	t.Helper()
	v, err := cfg.Get(alias, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := t.TempDir() + "/config"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLongLine checks that an over-long line is refused quickly and that
// an over-long Host line does not leave the block before it active.
func TestLongLine(t *testing.T) {
	text := "Host box\n  Port 2200\nHost " + strings.Repeat("*a", maxLineLen) + "\n  User wrong\n"
	var warnings strings.Builder
	o := testOptions(writeConfig(t, text))
	o.Logger = textLogger(&warnings)
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "port", tg.Port, 2200)
	eq(t, "user", tg.User, "tester")
	if !strings.Contains(warnings.String(), "line=3") {
		t.Errorf("no warning for line 3:\n%s", warnings.String())
	}
}
