package main

import (
	"encoding/json"
	"fmt"
)

// polite is the baseline: a well-behaved server that answers initialize
// and every other request with an empty result, so a test can check the
// session still works after an attack.
func init() { register("polite", func([]string) int { serve(nil); return 0 }) }

// request is what the modes read of a host's frame.
type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// serve answers the host as polite does; special, when not nil, is asked
// first and reports whether it handled the request itself.
func serve(special func(r request, line string) bool) {
	lines(func(line string) bool {
		var r request
		if json.Unmarshal([]byte(line), &r) != nil || r.ID == nil {
			return true
		}
		if special != nil && special(r, line) {
			return true
		}
		out(result(r.ID, r.Method))
		return true
	})
}

// result is a well-formed answer to a request of method.
func result(id json.RawMessage, method string) string {
	if method == "initialize" {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"hostile","version":"1"}}}`, id)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, id)
}
