package jsonrpc

// This file builds the frames m2m-ssh writes on its own account (errors,
// notifications, batches of them) and rewrites the id of one it passes on.

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// HeadEnvelope reads the envelope of a frame of which only head is left,
// and reports whether it names a request or response by an id that lies
// whole within head (a number cut short would name another request).
func HeadEnvelope(head []byte) (Envelope, bool) {
	env, err := ParseEnvelope(head)
	if err != nil || env.ID == nil || (env.Kind != KindRequest && env.Kind != KindResponse) {
		return env, false
	}
	end := cap(head) - cap(env.ID) + len(env.ID)
	return env, end < len(head)
}

// Error is the error object of a JSON-RPC response.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// ErrorFrame is a JSON-RPC error response to id (raw JSON; nil for null),
// ending in '\n'. An id that is not a JSON string, number or null, which
// ParseEnvelope never returns, is answered as null rather than echoed.
func ErrorFrame(id []byte, code int, message string, data any) []byte {
	if id == nil || !validID(id) {
		id = []byte("null")
	}
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   Error           `json:"error"`
	}{"2.0", id, Error{code, message, data}})
	if err != nil {
		// Only data that cannot be encoded gets here: answer without it.
		return ErrorFrame(id, code, message, nil)
	}
	return append(b, '\n')
}

// ErrorBatch answers the requests of one batch, as a batch.
func ErrorBatch(ids [][]byte, code int, message string) []byte {
	elems := make([][]byte, len(ids))
	for i, id := range ids {
		elems[i] = bytes.TrimSuffix(ErrorFrame(id, code, message, nil), []byte("\n"))
	}
	return JoinBatch(elems)
}

// Notification is a JSON-RPC notification frame, ending in '\n'. Params
// that cannot be encoded are left out: the notification still goes.
func Notification(method string, params any) []byte {
	b, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{"2.0", method, params})
	if err != nil {
		return Notification(method, nil)
	}
	return append(b, '\n')
}

// JoinBatch makes a batch frame of messages, ending in '\n'.
func JoinBatch(elems [][]byte) []byte {
	n := 3
	for _, e := range elems {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']', '\n')
}

// SpliceID returns msg with its id, which id aliases, replaced by newID.
// Only the id's bytes change; the rest of the message is copied as is.
func SpliceID(msg, id, newID []byte) []byte {
	// id is a subslice of msg: its offset follows from their capacities.
	start := cap(msg) - cap(id)
	if start < 0 || start+len(id) > len(msg) {
		panic("jsonrpc: id is not part of its message")
	}
	b := make([]byte, 0, len(msg)-len(id)+len(newID))
	b = append(b, msg[:start]...)
	b = append(b, newID...)
	return append(b, msg[start+len(id):]...)
}

// previewLen is how much of a frame a log line or a report shows: enough
// to recognise it (a banner, a method, the start of a result), never a
// whole large frame.
const previewLen = 120

// Preview is the start of a frame, for logs and doctor's report: without
// its line end, cut at previewLen bytes on a character boundary, with "…"
// when cut.
func Preview(frame []byte) string {
	frame = bytes.TrimRight(frame, "\r\n")
	if len(frame) <= previewLen {
		return string(frame)
	}
	cut := previewLen
	for cut > 0 && !utf8.RuneStart(frame[cut]) {
		cut--
	}
	return string(frame[:cut]) + "…"
}
