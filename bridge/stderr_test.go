package bridge

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
)

// The remote's stderr reaches Stderr prefixed, cut and rate-bounded, in
// the format the host's log has always had.
func TestCopyStderr(t *testing.T) {
	long := strings.Repeat("x", stderrlines.MaxLine)
	for _, c := range []struct {
		name, in, want string
	}{
		{"lines", "starting up\nready", "m2m-ssh: remote: starting up\nm2m-ssh: remote: ready\n"},
		{"cut", long + "abc\n", "m2m-ssh: remote: " + long + " [cut: 3 more bytes]\n"},
		{
			"flood",
			strings.Repeat("e\n", stderrlines.Burst+7),
			strings.Repeat("m2m-ssh: remote: e\n", stderrlines.Burst) +
				fmt.Sprintf("m2m-ssh: warning: 7 lines of the remote's stderr dropped: more than %d a second\n", stderrlines.Rate),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			stopped := time.Now()
			var out bytes.Buffer
			(&Bridge{Stderr: &out, now: func() time.Time { return stopped }}).copyStderr(strings.NewReader(c.in), func([]byte) {})
			if out.String() != c.want {
				t.Fatalf("Stderr = %.200q, want %.200q", out.String(), c.want)
			}
		})
	}
}
