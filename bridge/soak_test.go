package bridge

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// TestSoak sends thousands of requests, 64 in flight, while the connection
// is cut again and again: every request must get exactly one response, a
// result equal to what was asked or an error of m2m-ssh's, and results must
// come in the order the requests went. Only the requests in flight at a
// cut may be answered as lost.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	requests, cutEvery := 5000, 200 // cut after every cutEvery results
	if raceEnabled {
		requests, cutEvery = 2000, 50
	}
	const inFlight = 64
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect}))
	h.initialize()

	// params[i] is what request i carried, as the server echoes it.
	params := make([]string, requests)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range params {
		params[i] = fmt.Sprintf(`{"n":%d,"pad":%q}`, i, sshtest.Blob(rng.IntN(4096)))
	}
	slots := make(chan struct{}, inFlight)
	go func() {
		for i := range requests {
			slots <- struct{}{}
			if _, err := fmt.Fprintf(h.in, `{"jsonrpc":"2.0","id":%d,"method":"echo","params":%s}`+"\n", i, params[i]); err != nil {
				return
			}
		}
	}()
	cuts := make(chan struct{}, 1)
	go func() {
		for range cuts {
			ssrv.Drop()
		}
	}()
	defer close(cuts)

	var lost, dup, corrupt, results, lostErrs, notSent, reordered int
	seen := make([]bool, requests)
	last := -1
	deadline := time.After(longBound)
	for n := 0; n < requests; {
		var line []byte
		select {
		case line = <-h.lines:
		case <-deadline:
			var ids []int
			for i := range seen {
				if !seen[i] {
					ids = append(ids, i)
				}
			}
			t.Fatalf("%d requests got no response: %v", len(ids), ids)
		}
		var m struct {
			ID     *int            `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *jsonrpc.Error  `json:"error"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			corrupt++
			t.Errorf("frame is not JSON: %.80q", line)
			continue
		}
		if m.Method != "" {
			continue // list_changed after a reconnect
		}
		if m.ID == nil || *m.ID < 0 || *m.ID >= requests {
			corrupt++
			t.Errorf("response to an unknown id: %.80q", line)
			continue
		}
		id := *m.ID
		if seen[id] {
			dup++
			t.Errorf("second response to %d: %.80q", id, line)
			continue
		}
		seen[id] = true
		n++
		<-slots
		switch {
		case m.Error != nil && m.Error.Code == CodeConnectionLost:
			lostErrs++
		case m.Error != nil && m.Error.Code == CodeUnavailable:
			notSent++
		case m.Error != nil:
			corrupt++
			t.Errorf("request %d: unexpected error %d %s", id, m.Error.Code, m.Error.Message)
		default:
			var res struct {
				Params json.RawMessage `json:"params"`
			}
			if json.Unmarshal(m.Result, &res) != nil || string(res.Params) != params[id] {
				corrupt++
				t.Errorf("request %d: result differs: %.80s", id, m.Result)
				continue
			}
			if id < last {
				reordered++
			}
			last = id
			results++
			if results%cutEvery == 0 && n < requests-cutEvery {
				select {
				case cuts <- struct{}{}:
				default:
				}
			}
		}
	}
	t.Logf("%d requests: %d results, %d lost with a connection, %d not sent; %d connections; lost %d, duplicated %d, corrupt %d, reordered %d",
		requests, results, lostErrs, notSent, srv.conns.Load(), lost, dup, corrupt, reordered)
	if lost+dup+corrupt+reordered != 0 {
		t.Fatalf("lost %d, duplicated %d, corrupt %d, reordered %d; want 0", lost, dup, corrupt, reordered)
	}
	if srv.conns.Load() < 10 {
		t.Fatalf("only %d connections: the cuts did not happen", srv.conns.Load())
	}
	if bound := (int(srv.conns.Load()) - 1) * inFlight; lostErrs > bound {
		t.Fatalf("%d requests answered as lost over %d cuts; at most %d were in flight", lostErrs, srv.conns.Load()-1, bound)
	}
	h.in.Close()
	h.wait()
}
