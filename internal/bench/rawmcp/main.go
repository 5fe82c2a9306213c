// Command rawmcp is a minimal MCP responder for benchmarks: it answers
// initialize, ping and tools/call (echo, blob) with as little work of its
// own as a server can do, so that the cost of the bridge in front of it
// shows. It decodes each request with encoding/json, keeps the blob
// results it has built, and flushes its output only when no further
// request is waiting.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log"
	"os"
	"strconv"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Text string `json:"text"`
			Size int    `json:"size"`
		} `json:"arguments"`
	} `json:"params"`
}

const initResult = `{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"rawmcp","version":"1.0.0"}}`

func main() {
	in := bufio.NewReaderSize(os.Stdin, 256<<10)
	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	blobs := map[int][]byte{}
	var line, buf []byte
	for {
		var err error
		line, err = readLine(in, line[:0])
		if err != nil {
			out.Flush()
			if !errors.Is(err, io.EOF) {
				log.Fatalf("rawmcp: %v", err)
			}
			return
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			log.Fatalf("rawmcp: %v", err)
		}
		if req.ID == nil {
			continue // a notification
		}
		buf = append(buf[:0], `{"jsonrpc":"2.0","id":`...)
		buf = append(buf, req.ID...)
		buf = append(buf, `,"result":`...)
		switch {
		case req.Method == "initialize":
			buf = append(buf, initResult...)
		case req.Method == "ping":
			buf = append(buf, `{}`...)
		case req.Method == "tools/call" && req.Params.Name == "echo":
			q, _ := json.Marshal(req.Params.Arguments.Text)
			buf = textResult(buf, q)
		case req.Method == "tools/call" && req.Params.Name == "blob":
			n := req.Params.Arguments.Size
			q, ok := blobs[n]
			if !ok {
				q, _ = json.Marshal(sshtest.Blob(n))
				blobs[n] = q
			}
			buf = textResult(buf, q)
		default:
			buf = append(buf[:len(buf)-len(`"result":`)], `"error":{"code":-32601,"message":"no method `...)
			buf = append(buf, strconv.Quote(req.Method)[1:]...)
			buf = buf[:len(buf)-1]
			buf = append(buf, `"}`...)
		}
		buf = append(buf, "}\n"...)
		out.Write(buf)
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return
			}
		}
	}
}

// textResult appends a tool result holding a JSON string.
func textResult(buf, quoted []byte) []byte {
	buf = append(buf, `{"content":[{"type":"text","text":`...)
	buf = append(buf, quoted...)
	return append(buf, `}]}`...)
}

func readLine(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		part, err := r.ReadSlice('\n')
		dst = append(dst, part...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err != nil && len(dst) > 0 && errors.Is(err, io.EOF) {
				return dst, nil
			}
			return dst, err
		}
	}
}
