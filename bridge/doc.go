// Package bridge carries an MCP host's JSON-RPC session to a server on the
// other side of SSH: it connects through package transport, which yields
// the remote program's stdin and stdout (a Remote), and copies
// newline-delimited frames both ways, unchanged and whole, read and built
// by internal/jsonrpc.
//
// The bridge reads just enough of each frame to know its kind and id, so
// that every request the host sends gets exactly one answer: the server's,
// or a JSON-RPC error from m2m-ssh when the server cannot be reached.
//
// When the connection or the remote program is lost while the host still
// talks, the bridge answers the requests in flight (CodeConnectionLost),
// reconnects with backoff, replays the greeting the host made
// (server/discover or initialize and notifications/initialized) without
// the host seeing it, and holds the host's new requests until the session
// is back or ReconnectTimeout has passed (CodeUnavailable).
//
// docs/architecture.md follows a frame through the files each way.
package bridge
