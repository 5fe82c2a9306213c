package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// The stderr modes answer every request as polite does and attack the
// log: a host that does not read m2m-ssh's stderr must not stop the
// session, and what the remote writes there must not fill the host's log
// or m2m-ssh's memory.
func init() {
	// stderr-flood [LINE]: writes lines of LINE bytes (default 1000) to
	// stderr without pause while it serves, and a MiB of them before
	// each answer, until stdin ends.
	register("stderr-flood", func(args []string) int {
		size := 1000
		if len(args) > 0 {
			size = atoiOr(args[0], size)
		}
		line := append(bytes.Repeat([]byte{'e'}, size-1), '\n')
		mib := bytes.Repeat(line, max(1, (1<<20)/len(line)))
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := os.Stderr.Write(line); err != nil {
					return
				}
			}
		}()
		serve(func(r request, _ string) bool {
			os.Stderr.Write(mib)
			return false
		})
		close(done)
		return 0
	})
	// stderr-line SIZE: writes one stderr line of SIZE bytes, its
	// newline only at the end, then "stderr-line done", while it serves.
	register("stderr-line", func(args []string) int {
		size := 300 << 20
		if len(args) > 0 {
			size = atoiOr(args[0], size)
		}
		go func() {
			chunk := bytes.Repeat([]byte{'x'}, 64<<10)
			for left := size; left > 0; left -= len(chunk) {
				if _, err := os.Stderr.Write(chunk[:min(left, len(chunk))]); err != nil {
					return
				}
			}
			fmt.Fprint(os.Stderr, "\nstderr-line done\n")
		}()
		serve(nil)
		return 0
	})
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}
