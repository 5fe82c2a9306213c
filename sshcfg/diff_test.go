package sshcfg

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// comparedKeywords are the keywords sshcfg resolves; the differential
// test compares each of them with ssh -G.
var comparedKeywords = []string{
	"user", "hostname", "port", "identityfile", "certificatefile",
	"identitiesonly", "identityagent", "proxyjump", "proxycommand",
	"userknownhostsfile", "globalknownhostsfile", "stricthostkeychecking",
	"hashknownhosts", "hostkeyalias", "hostkeyalgorithms", "connecttimeout",
	"serveraliveinterval", "serveralivecountmax", "forwardagent",
	"remotecommand", "setenv", "sendenv", "batchmode", "loglevel",
	"controlpath", "controlmaster", "controlpersist",
	"ciphers", "macs", "kexalgorithms", "pubkeyacceptedalgorithms",
	"hostbasedacceptedalgorithms", "casignaturealgorithms",
	"addressfamily", "bindaddress", "bindinterface", "connectionattempts",
	"canonicalizehostname", "canonicaldomains", "canonicalizemaxdots",
	"canonicalizefallbacklocal", "canonicalizePermittedcnames",
	"preferredauthentications", "pubkeyauthentication",
	"passwordauthentication", "kbdinteractiveauthentication",
	"numberofpasswordprompts", "knownhostscommand", "checkhostip",
}

// intendedDifferences lists, by "file alias keyword", where sshcfg
// deliberately differs from ssh -G, and why. It is empty: every
// difference is a failure.
var intendedDifferences = map[string]string{}

var (
	aliasesLine = regexp.MustCompile(`(?m)^# aliases: (.*?)\r?$`)
	// optionsLine lists -o options for every alias, separated by ";".
	optionsLine = regexp.MustCompile(`(?m)^# options: (.*?)\r?$`)
)

// TestDifferential resolves every alias of every file in
// testdata/corpus with sshcfg and with OpenSSH's ssh -G, and
// compares the two keyword by keyword.
func TestDifferential(t *testing.T) {
	sshPath := sshtest.LookPath(t, "ssh")
	home := t.TempDir()
	testDir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "home", "ssh"), filepath.Join(home, ".ssh"))
	// ssh takes ~ and %d from the password database, not from $HOME
	// (which only Include's glob reads). sshcfg takes all of them from
	// Options.Home, so ssh's home is mapped onto the test's below.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":          home,
		"PATH":          os.Getenv("PATH"),
		"SHELL":         "/bin/sh",
		"M2M_TEST_DIR":  testDir,
		"SSH_AUTH_SOCK": "/tmp/agent.test",
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.conf"))
	if err != nil || len(files) < 40 {
		t.Fatalf("corpus has %d files (%v), want at least 40", len(files), err)
	}
	var compared, cases atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d files, %d aliases, %d keyword comparisons, %d intended differences",
			len(files), cases.Load(), compared.Load(), len(intendedDifferences))
	})
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := aliasesLine.FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s has no '# aliases:' line", file)
		}
		var opts []string
		if m := optionsLine.FindSubmatch(data); m != nil {
			opts = strings.Split(string(m[1]), ";")
		}
		// Both sides read a private copy: ssh refuses included files
		// that others may write, and testdata may be checked out 0664.
		conf := filepath.Join(testDir, filepath.Base(file))
		if err := os.WriteFile(conf, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, alias := range strings.Fields(string(m[1])) {
			name := filepath.Base(file) + "/" + alias
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cases.Add(1)
				want := sshG(t, sshPath, conf, alias, opts, environ, me.HomeDir, home)
				o := Options{
					ConfigFile: conf,
					Options:    opts,
					Home:       home,
					Getenv: func(k string) (string, bool) {
						v, ok := env[k]
						return v, ok
					},
					// The corpus needs no lookup; one would differ from
					// ssh's here instead of reaching the network.
					Resolver: &fakeDNS{},
				}
				tg, err := Resolve(alias, o)
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				var out bytes.Buffer
				if err := tg.WriteConfig(&out); err != nil {
					t.Fatal(err)
				}
				got := parseG(out.Bytes())
				for _, kw := range comparedKeywords {
					compared.Add(1)
					if reflect.DeepEqual(got[kw], want[kw]) {
						continue
					}
					key := filepath.Base(file) + " " + alias + " " + kw
					if why, ok := intendedDifferences[key]; ok {
						t.Logf("%s: intended difference (%s): sshcfg %q, ssh %q", kw, why, got[kw], want[kw])
						continue
					}
					t.Errorf("%s: sshcfg %q, ssh -G %q", kw, got[kw], want[kw])
				}
			})
		}
	}
}

// sshG runs ssh -G, which prints the configuration and never connects.
func sshG(t *testing.T, sshPath, conf, alias string, opts, environ []string, pwHome, home string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-G", "-F", conf}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	cmd := exec.CommandContext(ctx, sshPath, append(args, alias)...)
	cmd.Env = environ
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh -G -F %s %s: %v\n%s", conf, alias, err, stderr.String())
	}
	g := parseG(out)
	for kw, vals := range g {
		for i, v := range vals {
			vals[i] = replaceHome(v, pwHome, home)
		}
		g[kw] = vals
	}
	return g
}

// replaceHome maps the password database's home directory, where it
// starts a path, onto the test's home.
func replaceHome(v, from, to string) string {
	if from == "" || from == "/" {
		return v
	}
	re := regexp.MustCompile(`(^|[ =:])` + regexp.QuoteMeta(from) + `(/|$| )`)
	return re.ReplaceAllString(v, "${1}"+to+"${2}")
}

// parseG reads ssh -G output: keyword, space, value, keywords repeated.
func parseG(out []byte) map[string][]string {
	g := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		kw, v, _ := strings.Cut(sc.Text(), " ")
		g[kw] = append(g[kw], v)
	}
	return g
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
