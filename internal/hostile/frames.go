package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The frame modes attack the frame path: ids that are not JSON, responses
// that are not JSON, frames over any sane size, and requests to the host
// without end. Each answers initialize politely and attacks at the first
// tools/call; other requests are answered politely, so that a test can
// show the session goes on.
func init() {
	// bad-id: a request to the host whose id is not JSON, then exit 1
	// without answering.
	register("bad-id", func([]string) int {
		attack(func(r request) int {
			out(`{"jsonrpc":"2.0","id":1x,"method":"roots/list"}`)
			return 1
		})
		return 0
	})
	// not-json nope|infinity: a response that is not JSON: one whose id
	// can be read ("result":nope), or whose id is Infinity. nope goes on
	// serving; infinity exits 1 after it.
	register("not-json", func(args []string) int {
		variant := "nope"
		if len(args) > 0 {
			variant = args[0]
		}
		attack(func(r request) int {
			if variant == "infinity" {
				out(`{"jsonrpc":"2.0","id":Infinity,"result":{}}`)
				return 1
			}
			out(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":nope}}}`, r.ID))
			return -1
		})
		return 0
	})
	// huge MiB: the answer is a line of MiB mebibytes, with its newline;
	// then it goes on serving.
	register("huge", func(args []string) int {
		size := mib(args, 200)
		attack(func(r request) int {
			w := bufio.NewWriterSize(os.Stdout, 1<<20)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"`, r.ID)
			fill(w, size)
			w.WriteString("\"}]}}\n")
			w.Flush()
			return -1
		})
		return 0
	})
	// endless MiB: MiB mebibytes with no newline (0: without end), then
	// exit 1.
	register("endless", func(args []string) int {
		size := mib(args, 0)
		attack(func(r request) int {
			w := bufio.NewWriterSize(os.Stdout, 1<<20)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"text":"`, r.ID)
			if size == 0 {
				for {
					if fill(w, 1<<30) != nil {
						return 1
					}
				}
			}
			fill(w, size)
			w.Flush()
			return 1
		})
		return 0
	})
	// flood-requests N: N requests to the host, never answered, then
	// the answer to the host's request; it goes on serving.
	register("flood-requests", func(args []string) int {
		n := 100000
		if len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		attack(func(r request) int {
			w := bufio.NewWriterSize(os.Stdout, 1<<20)
			for i := range n {
				fmt.Fprintf(w, `{"jsonrpc":"2.0","id":"flood-%d","method":"roots/list","params":{}}`+"\n", i)
			}
			fmt.Fprintln(w, result(r.ID, r.Method))
			w.Flush()
			return -1
		})
		return 0
	})
}

// attack answers the host politely, ignores answers to its own requests,
// and calls f with every tools/call; f returns the status to
// exit with, or -1 to go on.
func attack(f func(r request) int) {
	serve(func(r request, line string) bool {
		if r.Method == "" {
			return true // the host's, or m2m-ssh's, answer to one of ours
		}
		if r.Method != "tools/call" {
			return false
		}
		if code := f(r); code >= 0 {
			os.Stdout.Sync()
			os.Exit(code)
		}
		return true
	})
}

func mib(args []string, def int) int {
	if len(args) > 0 {
		if n, err := strconv.Atoi(args[0]); err == nil {
			return n << 20
		}
	}
	return def << 20
}

// fill writes n bytes of string content with no newline.
func fill(w *bufio.Writer, n int) error {
	chunk := strings.Repeat("frame ", 1<<14)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.WriteString(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
