package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMECommands checks that every command the README shows is run by
// a test: an m2m-ssh command (or 'go run . …') by testdata/script/readme.txtar,
// with -F naming the script's ssh config; the others by the test named
// for each, which must hold the words given.
func TestREADMECommands(t *testing.T) {
	readme := read(t, "README.md")
	script := scriptCommands(read(t, "testdata/script/readme.txtar"))
	// Commands that are not m2m-ssh's, where they run, and what that file
	// must contain for the claim to hold.
	elsewhere := []struct{ prefix, file, holds string }{
		{"npx @modelcontextprotocol/inspector --cli M2M demo --method tools/list", "release/release_test.go", `"--cli", command, "demo", "--method", "tools/list"`},
		{"npx @modelcontextprotocol/inspector --cli M2M buildbox --method tools/list", "hosts_cli_test.go", `"@modelcontextprotocol/inspector", "--cli", bin}, c.args...), "--method", "tools/list"`},
		{"claude mcp add --transport stdio buildbox", "hosts_cli_test.go", `w.run(t, "sh", "-c", "PATH="+filepath.Dir(claude)+":$PATH; "+addLine)`},
		{"go run ./release", ".ci/run", "go run ./release -out"},
		{"go test ./...", ".ci/run", "go test ./..."},
		{"go test ./release", ".ci/run", "go test ./..."},
		{"bash .ci/run", ".ci/run", "#!/usr/bin/env bash"},
		// Not run by a test: it needs a published release from the
		// module proxy, or opens the Inspector's web page.
		{"go install github.com/machine-to-machine/m2m-ssh@latest", "", ""},
		{"npx @modelcontextprotocol/inspector M2M buildbox", "", ""},
	}
	commands := shellBlocks(readme)
	// Inline: the run-and-test table, and every m2m-ssh command line
	// that is not a synopsis (ALIAS, HOST, …) or a subcommand's name.
	for _, m := range regexp.MustCompile("`((?:go run \\.|(?:[A-Z0-9_]+=\\S+ )*go test|bash \\.ci|m2m-ssh) [^`]*)`").FindAllStringSubmatch(readme, -1) {
		if synopsis(m[1]) {
			continue
		}
		commands = append(commands, m[1])
	}
	if len(commands) < 15 {
		t.Fatalf("found %d commands in the README; the parsing is broken", len(commands))
	}
	for _, c := range commands {
		c, _, _ = strings.Cut(c, " #")
		c = strings.Join(strings.Fields(c), " ")
		c = strings.NewReplacer(`"$(go env GOPATH)/bin/m2m-ssh"`, "M2M", "/home/you/go/bin/m2m-ssh", "M2M", " ALIAS ", " buildbox ").Replace(c)
		if rest, ok := strings.CutPrefix(c, "go run . "); ok {
			c = "m2m-ssh " + rest
		}
		if rest, ok := strings.CutPrefix(c, "m2m-ssh "); ok {
			if strings.Contains(rest, "buildbox") {
				c = "exec m2m-ssh -F ssh_config " + rest
			} else {
				c = "exec m2m-ssh " + rest // no host: no config
			}
			if !slices.Contains(script, c) {
				t.Errorf("the README's %q is not run by readme.txtar (as %q)", rest, c)
			}
			continue
		}
		// A go test command is checked by what it names; one that is
		// also run, by the file that runs it.
		found := false
		if isGoTest(c) {
			checkGoTest(t, "README.md", c)
			found = !strings.HasPrefix(c, "go test")
		}
		for _, e := range elsewhere {
			if strings.HasPrefix(c, e.prefix) {
				found = true
				if e.file != "" && !strings.Contains(read(t, e.file), e.holds) {
					t.Errorf("the README's %q is said to run in %s, which does not hold %q", c, e.file, e.holds)
				}
			}
		}
		if !found {
			t.Errorf("the README's %q is run by no test", c)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsGoTests checks the 'go test' commands docs/*.md show, the
// benchmarks' among them: each names packages, tests and environment
// variables that exist, so a renamed test or knob fails here rather than
// in a reader's terminal.
func TestDocsGoTests(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs: %v", err)
	}
	n := 0
	for _, doc := range docs {
		text := read(t, doc)
		commands := shellBlocks(text)
		for _, m := range regexp.MustCompile("`([^`\\n]*go test [^`\\n]*)`").FindAllStringSubmatch(text, -1) {
			commands = append(commands, m[1])
		}
		for _, c := range commands {
			if isGoTest(c) {
				checkGoTest(t, doc, c)
				n++
			}
		}
	}
	if n < 5 {
		t.Fatalf("found %d go test commands in docs; the parsing is broken", n)
	}
}

// shellBlocks are the command lines of a Markdown text's sh blocks, a
// line ending in a backslash joined to the next.
func shellBlocks(text string) []string {
	var commands []string
	inSh, cont := false, ""
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && strings.HasSuffix(line, "\\"):
			cont += strings.TrimSuffix(line, "\\") + " "
		case inSh && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#"):
			commands = append(commands, cont+line)
			cont = ""
		}
	}
	return commands
}

// scriptCommands are the commands a testscript file runs, each without
// its negation or condition and with its spaces made single: not its
// comments, nor the files of its archive.
func scriptCommands(script string) []string {
	script, _, _ = strings.Cut(script, "\n-- ")
	var runs []string
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		for {
			if rest, ok := strings.CutPrefix(line, "! "); ok {
				line = rest
			} else if strings.HasPrefix(line, "[") && strings.Contains(line, "] ") {
				_, line, _ = strings.Cut(line, "] ")
			} else {
				break
			}
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			runs = append(runs, strings.Join(strings.Fields(line), " "))
		}
	}
	return runs
}

// synopsis reports whether an inline m2m-ssh text is a form rather than a
// command: it has a placeholder (ALIAS, HOST, …) or alternatives, or it is
// only a subcommand's name.
func synopsis(c string) bool {
	words := strings.Fields(c)
	if words[0] == "m2m-ssh" && len(words) <= 2 && !strings.HasPrefix(words[len(words)-1], "-") {
		return true
	}
	return strings.ContainsAny(c, "…|") || regexp.MustCompile(`\b[A-Z]{1,}\b`).MatchString(strings.NewReplacer("M2M", "").Replace(c))
}

// checkGoTest checks a 'go test' command doc shows: its packages exist, a
// -run or -bench pattern matches a test of theirs, and each environment
// variable it sets is read by them.
func checkGoTest(t *testing.T, doc, c string) {
	t.Helper()
	fields := strings.Fields(strings.NewReplacer(`"`, "", "'", "").Replace(c))
	var env, pkgs []string
	patterns := map[string]string{}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.Contains(f, "=") && !strings.HasPrefix(f, "-") && len(pkgs) == 0 && !slices.Contains(fields[:i], "go"):
			env = append(env, f[:strings.Index(f, "=")])
		case strings.HasPrefix(f, "./"):
			pkgs = append(pkgs, f)
		case (f == "-run" || f == "-bench") && i+1 < len(fields):
			patterns[f] = fields[i+1]
			i++
		}
	}
	if len(pkgs) == 0 {
		t.Errorf("%s: %q names no package", doc, c)
		return
	}
	for _, pkg := range pkgs {
		if strings.HasSuffix(pkg, "...") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
		if len(files) == 0 {
			t.Errorf("%s: %q: no package %s", doc, c, pkg)
			continue
		}
		var src strings.Builder
		for _, f := range files {
			src.WriteString(read(t, f))
		}
		for flag, kind := range map[string]string{"-run": "Test", "-bench": "Benchmark"} {
			p, ok := patterns[flag]
			if !ok || p == "^$" || p == "." {
				continue
			}
			re, err := regexp.Compile(p)
			if err != nil {
				t.Errorf("%s: %q: %s %q: %v", doc, c, flag, p, err)
				continue
			}
			found := false
			for _, m := range regexp.MustCompile(`(?m)^func (`+kind+`\w*)\(`).FindAllStringSubmatch(src.String(), -1) {
				found = found || re.MatchString(m[1])
			}
			if !found {
				t.Errorf("%s: %q: %s %q matches no %s function in %s", doc, c, flag, p, kind, pkg)
			}
		}
		for _, v := range env {
			if !strings.Contains(src.String(), `"`+v+`"`) {
				t.Errorf("%s: %q sets %s, which %s does not read", doc, c, v, pkg)
			}
		}
	}
}

// isGoTest reports whether c runs go test on packages of this module.
func isGoTest(c string) bool {
	return strings.Contains(c, "go test ") && strings.Contains(c, " ./")
}

// TestREADMENamesCIPackages checks that the README names every Debian
// package .ci/run installs for the tests: a reader who installs what the
// README says gets the tests CI runs, not skips.
func TestREADMENamesCIPackages(t *testing.T) {
	readme, ci := read(t, "README.md"), read(t, ".ci/run")
	m := regexp.MustCompile(`need\+=\(([^)]*)\)`).FindAllStringSubmatch(ci, -1)
	if len(m) < 5 {
		t.Fatalf("found %d package lists in .ci/run; the parsing is broken", len(m))
	}
	for _, list := range m {
		for _, pkg := range strings.Fields(list[1]) {
			if !regexp.MustCompile("[ `(]" + regexp.QuoteMeta(pkg) + "[ `),]").MatchString(readme) {
				t.Errorf(".ci/run installs %s, which the README does not name", pkg)
			}
		}
	}
}

// TestREADMENotHonoured checks that the README's "Not honoured" list names
// exactly the keywords the config reader warns are not honoured.
func TestREADMENotHonoured(t *testing.T) {
	src := read(t, "sshcfg/keywords.go")
	block := regexp.MustCompile(`(?s)var notHonoured = map\[string\]string\{(.*?)\n\}`).FindStringSubmatch(src)
	if block == nil {
		t.Fatal("no notHonoured map in sshcfg/keywords.go")
	}
	var want []string
	for _, m := range regexp.MustCompile(`"([a-z0-9]+)":`).FindAllStringSubmatch(block[1], -1) {
		want = append(want, m[1])
	}
	readme := read(t, "README.md")
	i := strings.Index(readme, "**Not honoured**")
	if i < 0 || len(want) == 0 {
		t.Fatalf("no Not honoured paragraph in the README, or no keywords (%v)", want)
	}
	para, _, _ := strings.Cut(readme[i:], "\n\n")
	// The keywords named before the one that is resolved but unused.
	named, _, ok := strings.Cut(para, "`HostbasedAcceptedAlgorithms`")
	if !ok {
		t.Fatal("the Not honoured paragraph no longer names HostbasedAcceptedAlgorithms: update this test")
	}
	var got []string
	for _, m := range regexp.MustCompile("`([A-Za-z0-9]+)`").FindAllStringSubmatch(named, -1) {
		got = append(got, strings.ToLower(m[1]))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the README's Not honoured list names %v; the config reader warns of %v", got, want)
	}
}

// TestArchitectureNamesPackages checks that docs/architecture.md names
// every package of the module, and that every file path it gives exists.
func TestArchitectureNamesPackages(t *testing.T) {
	doc := read(t, "docs/architecture.md")
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || path == "." {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if src, _ := filepath.Glob(filepath.Join(path, "*.go")); len(src) > 0 && !strings.Contains(doc, "`"+filepath.ToSlash(path)+"`") {
			t.Errorf("docs/architecture.md does not name package %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("`([a-z0-9_]+/[a-z0-9_/]+\\.go)`").FindAllStringSubmatch(doc, -1) {
		if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist", m[1])
		}
	}
}
