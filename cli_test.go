package main

import (
	"strings"
	"testing"
)

// The command line's scenarios are testdata/script's (script_test.go);
// these run it in-process for the tables of the Go tests.

// runCLI runs the command line in-process with empty stdin.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errs strings.Builder
	code = run(append([]string{"m2m-ssh"}, args...), strings.NewReader(""), &out, &errs)
	return code, out.String(), errs.String()
}

// wantUsageError runs the command line and checks that it fails as a
// usage error: status 2, nothing on stdout, an error containing want and a
// hint on stderr.
func wantUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	code, out, errs := runCLI(args...)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if out != "" {
		t.Errorf("stdout = %q; the protocol's stream must stay clean", out)
	}
	if !strings.Contains(errs, "m2m-ssh: error: ") || !strings.Contains(errs, want) || !strings.Contains(errs, "m2m-ssh: hint: ") {
		t.Errorf("stderr = %q, want an error containing %q and a hint", errs, want)
	}
}
