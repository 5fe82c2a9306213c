package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "89d72521bae6f61f0c8ccc0b191ee15e4308b6c0"
	for _, c := range []struct {
		name    string
		st      stamp
		bi      *debug.BuildInfo
		v, more string
	}{
		{"release stamp", stamp{"v1.2.3", rev, "2026-12-01T00:00:00Z"}, nil, "v1.2.3", "commit 89d72521bae6, 2026-12-01T00:00:00Z"},
		{"go install pkg@version", stamp{}, &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3", ""},
		{"go build, pseudo-version", stamp{}, &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201220000-89d72521bae6+dirty"}, Settings: vcs(rev, "2026-12-01T22:00:00Z", "true")},
			"v0.0.0-20261201220000-89d72521bae6+dirty", "commit 89d72521bae6-dirty, 2026-12-01T22:00:00Z"},
		{"checkout, no module version", stamp{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-12-01T22:00:00Z", "false")}, "89d72521bae6", "2026-12-01T22:00:00Z"},
		{"checkout, modified", stamp{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-12-01T22:00:00Z", "true")}, "89d72521bae6-dirty", "2026-12-01T22:00:00Z"},
		{"nothing recorded", stamp{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", ""},
		{"no build info", stamp{}, nil, "dev", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, more := versionOf(c.st, c.bi)
			if v != c.v || more != c.more {
				t.Errorf("versionOf = %q, %q; want %q, %q", v, more, c.v, c.more)
			}
		})
	}
}
