package bridge

import (
	"strconv"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// JSON-RPC error codes m2m-ssh answers with on the server's behalf. The
// two codes tell a host whether a request is safe to send again.
const (
	// CodeParseError answers a frame from the host that is not JSON.
	CodeParseError = -32700
	// CodeUnavailable answers a request that was not sent to the remote
	// server: the session could not start, was not back within the
	// reconnect timeout, or m2m-ssh gave up or was shutting down. The
	// request did not run; sending it again is safe.
	CodeUnavailable = -32000
	// CodeConnectionLost answers a request that was sent to the remote
	// server when the connection to it, or the server process, was lost
	// before it answered. The request may or may not have run.
	CodeConnectionLost = -32001
	// CodeInvalidRequest answers a request over the frame limit, which
	// was not passed on.
	CodeInvalidRequest = -32600
	// CodeInternalError answers a request whose response from the remote
	// server could not be passed on: over the frame limit, or not JSON.
	// The request ran.
	CodeInternalError = -32603
)

// frameSize says how large a frame over the limit was.
func frameSize(tl *jsonrpc.FrameTooLargeError) string {
	if tl.Cut {
		return "at least " + byteCount(tl.Size)
	}
	return byteCount(tl.Size)
}

// byteCount is n bytes, for people, as --max-frame takes it.
func byteCount(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
