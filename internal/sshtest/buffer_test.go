package sshtest

import (
	"testing"
	"time"
)

// WaitFor sees what is written while it waits, what was written before,
// and says so when nothing comes.
func TestBufferWaitFor(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, later []string
		want          bool
	}{
		{"written before", []string{"a line\n"}, nil, true},
		{"written while waiting, in pieces", []string{"a li"}, []string{"ne\n"}, true},
		{"after other writes", nil, []string{"noise\n", "more\n", "a line\n"}, true},
		{"never written", []string{"other\n"}, []string{"noise\n"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer
			for _, s := range tc.before {
				b.WriteString(s)
			}
			go func() {
				for _, s := range tc.later {
					b.WriteString(s)
				}
			}()
			// The miss waits the whole bound, so it is short; a hit
			// returns as soon as its write lands.
			within := 30 * time.Second
			if !tc.want {
				within = 200 * time.Millisecond
			}
			if got := b.WaitFor("a line", within); got != tc.want {
				t.Fatalf("WaitFor = %v, want %v; buffer %q", got, tc.want, b.String())
			}
		})
	}
}
