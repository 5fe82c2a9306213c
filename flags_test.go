package main

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{
		"64MiB": 64 << 20, "1048576": 1 << 20, "16mib": 16 << 20, "512KiB": 512 << 10, "2GiB": 2 << 30,
		"1k": 1 << 10, "8 MB": 8 << 20, "4096b": 4096, " 1G ": 1 << 30,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "1.5MiB", "64TiB", "100", "MiB", "99999999999999999999", "9000000000GiB"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestMaxFrameFlag(t *testing.T) {
	wantUsageError(t, []string{"--max-frame", "lots", "buildbox"}, "is not a size")
	// stdin is not a terminal: the help is on stderr.
	_, _, help := runCLI("--help")
	if !strings.Contains(help, "--max-frame SIZE") || !strings.Contains(help, "64MiB") {
		t.Errorf("--help does not document --max-frame:\n%s", help)
	}
}
