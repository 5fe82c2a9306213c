package sshtest

import "strings"

// Blob is size bytes of valid UTF-8 text with multi-byte characters, JSON
// specials and the line separators that naive line splitters break at
// (U+2028, U+2029, U+0085, \n inside strings), so that a bridge that alters
// any byte is caught. The test MCP server's blob tool returns it.
func Blob(size int) string {
	const unit = "m2m-ssh \"frame\" \\ é ✓ \u2028 \u2029 \u0085 \t end\n"
	var b strings.Builder
	b.Grow(size + len(unit))
	for b.Len()+len(unit) <= size {
		b.WriteString(unit)
	}
	for b.Len() < size {
		b.WriteByte('.')
	}
	return b.String()
}
