package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// hostRequests are what the host has in flight when the fuzzer's frames
// arrive: each must be answered exactly once, by the remote or the bridge.
var hostRequests = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`,
	`{"jsonrpc":"2.0","id":"a","method":"initialize","params":{}}`,
	`[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"ping"}]`,
}

var hostIDs = []string{`1`, `"a"`, `2`, `3`}

// FuzzRemoteFrames feeds arbitrary output of the remote to a Bridge while
// the host has requests in flight, then cuts the connection: the bridge
// must not panic, must write only JSON frames to the host, and must answer
// each of its requests exactly once.
func FuzzRemoteFrames(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{}}` + "\n",
		`{"jsonrpc":"2.0","id":"s","method":"roots/list"}` + "\n" + `{"jsonrpc":"2.0","id":7,"method":"roots/list"}` + "\n",
		`[{"jsonrpc":"2.0","id":2,"result":{}},{"jsonrpc":"2.0","id":9,"method":"x"}]` + "\n",
		`{"jsonrpc":"2.0","id":"a","result":nope}}}` + "\n" + `{"id":3,"error":{"code":1,"message":"m"}}`,
		"Welcome!\n" + `{"method":"notifications/message","params":{"x":"` + string(bytes.Repeat([]byte("z"), 600)) + `"}}` + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		remote := playedRemote()
		b := memBridge(remote)
		b.MaxFrame = 512 // so that frames over it are fuzzed too
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.Run(context.Background(), inR, outW)
			outW.Close()
		}()
		var out []byte
		read := make(chan struct{})
		go func() {
			defer close(read)
			out, _ = io.ReadAll(outR)
		}()
		got := make(chan struct{})
		go func() {
			defer io.Copy(io.Discard, remote.stdin)
			sc := bufio.NewScanner(remote.stdin)
			for n := 0; n < len(hostRequests) && sc.Scan(); n++ {
			}
			close(got)
		}()
		for _, r := range hostRequests {
			io.WriteString(inW, r+"\n")
		}
		<-got
		remote.stdout.Write(data)
		remote.cut()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the bridge did not end after the connection was lost")
		}
		inW.Close()
		<-read

		answers := map[string]int{}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if line[len(line)-1] != '\n' || !json.Valid(line) {
				t.Fatalf("the host got a frame that is not JSON: %q", line)
			}
			var msgs []json.RawMessage
			if json.Unmarshal(line, &msgs) != nil {
				msgs = []json.RawMessage{line}
			}
			for _, m := range msgs {
				var r struct {
					ID     json.RawMessage `json:"id"`
					Result json.RawMessage `json:"result"`
					Error  json.RawMessage `json:"error"`
				}
				if json.Unmarshal(m, &r) == nil && (r.Result != nil || r.Error != nil) {
					answers[string(r.ID)]++
				}
			}
		}
		for _, id := range hostIDs {
			if answers[id] != 1 {
				t.Fatalf("request %s was answered %d times; the host got:\n%s", id, answers[id], out)
			}
		}
	})
}
