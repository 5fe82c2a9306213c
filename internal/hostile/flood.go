package main

import (
	"fmt"
	"strings"
	"time"
)

// flood-stdout answers as polite does; after a request for "flood" it also
// writes notifications to stdout without pause until stdin ends, for the
// tests of a host that stops reading m2m-ssh's stdout: m2m-ssh is then
// blocked writing to it, and a signal must still end it.
func init() { register("flood-stdout", floodStdout) }

// floodFor bounds the flood: a test that fails to end it does not leave it
// writing for ever.
const floodFor = 2 * time.Minute

func floodStdout([]string) int {
	note := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":%q}}`, strings.Repeat("f", 1000))
	serve(func(r request, _ string) bool {
		if r.Method != "flood" {
			return false
		}
		out(result(r.ID, r.Method))
		go func() {
			for end := time.Now().Add(floodFor); time.Now().Before(end); {
				out(note)
			}
		}()
		return true
	})
	return 0
}
