// Package jsonrpc is the wire format m2m-ssh carries: newline-delimited
// JSON-RPC 2.0 frames. It reads frames within a size limit (FrameReader),
// reads just enough of one to know its kind and id (ParseEnvelope,
// Elements), checks that a frame is JSON (Valid), builds the frames
// m2m-ssh answers with (ErrorFrame, Notification, JoinBatch) and rewrites
// a message's id in place (SpliceID). It knows nothing of SSH or of a
// session: bytes in, bytes out.
package jsonrpc
