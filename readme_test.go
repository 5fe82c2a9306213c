package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECommands checks that every command the README shows is run by
// a test: an m2m-ssh command (or 'go run . …') by testdata/script/readme.txtar,
// with -F naming the script's ssh config; the others by the test named
// for each, which must hold the words given.
func TestREADMECommands(t *testing.T) {
	readme := read(t, "README.md")
	script := read(t, "testdata/script/readme.txtar")
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
	var commands []string
	inSh := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#"):
			commands = append(commands, line)
		}
	}
	// The run-and-test table and the hosts' config commands, inline.
	for _, m := range regexp.MustCompile("`((?:go run \\.|go test|bash \\.ci|m2m-ssh config buildbox|m2m-ssh doctor buildbox) [^`]*)`").FindAllStringSubmatch(readme, -1) {
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
			if rest == "demo" {
				c = "exec m2m-ssh demo"
			} else {
				c = "exec m2m-ssh -F ssh_config " + rest
			}
			if !strings.Contains(script, c+"\n") {
				t.Errorf("the README's %q is not run by readme.txtar (as %q)", rest, c)
			}
			continue
		}
		found := false
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
