package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// toolResult is a tools/call response carrying text of about size bytes,
// as an MCP server writes it: id first, then the result.
func toolResult(id, size int) []byte {
	text, _ := json.Marshal(sshtest.Blob(size))
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":%s}]}}`+"\n", id, text)
}

// BenchmarkFrameReader reads an endless stream of one frame through one
// reader, as the bridge's pumps do, in reads of at most 32 KiB.
func BenchmarkFrameReader(b *testing.B) {
	for _, size := range []int{100, 4 << 10, 64 << 10, 1 << 20, 16 << 20} {
		frame := toolResult(1, size)
		b.Run(fmt.Sprintf("result=%s", byteSize(size)), func(b *testing.B) {
			fr := NewFrameReader(&repeatReader{frame: frame})
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := fr.Next()
				if err != nil || len(f) != len(frame) {
					b.Fatalf("frame of %d bytes, %v", len(f), err)
				}
			}
		})
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	frames := []struct {
		name  string
		frame []byte
	}{
		{"request", []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}` + "\n")},
		{"notification", []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":0.5}}` + "\n")},
		{"result 1 MiB, id first", toolResult(42, 1<<20)},
		{"result 1 MiB, id last", []byte(fmt.Sprintf(`{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":%q}]},"id":42}`+"\n", bytes.Repeat([]byte("x"), 1<<20)))},
	}
	for _, f := range frames {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(f.frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseEnvelope(f.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendSafe(b *testing.B) {
	for _, f := range []struct {
		name  string
		frame []byte
	}{
		{"small request", []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}` + "\n")},
		{"1 MiB with separators", []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"text":"%s"}}`+"\n", sshtest.Blob(1<<20)))},
	} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(f.frame)))
			b.ReportAllocs()
			var dst []byte
			for b.Loop() {
				dst = AppendSafe(dst[:0], f.frame)
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
