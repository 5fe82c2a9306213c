package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		in     string
		kind   Kind
		id     string
		method string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, KindRequest, `1`, "initialize"},
		{`{"method":"tools/call","params":{"a":[1,{"b":"}"}]},"id":"x-1"}`, KindRequest, `"x-1"`, "tools/call"},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, ``, "notifications/initialized"},
		{`{"jsonrpc":"2.0","id":7,"result":{"big":"` + strings.Repeat("z", 1000) + `"}}`, KindResponse, `7`, ""},
		{`{"jsonrpc":"2.0","result":{"s":"a\"}b"},"id":8}`, KindResponse, `8`, ""},
		{`{"jsonrpc":"2.0","error":{"code":-1,"message":"no"},"id":null}`, KindResponse, `null`, ""},
		{` { "id" : 9 , "method" : "ping" } `, KindRequest, `9`, "ping"},
		{`{"id":-1.5e3,"method":"m"}`, KindRequest, `-1.5e3`, "m"},
		{`{"params":"\\","method":"n"}`, KindNotification, ``, "n"},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, KindBatch, ``, ""},
	}
	for _, tt := range tests {
		env, err := ParseEnvelope([]byte(tt.in))
		if err != nil {
			t.Errorf("ParseEnvelope(%.50q): %v", tt.in, err)
			continue
		}
		if env.Kind != tt.kind || string(env.ID) != tt.id || string(env.Method) != tt.method {
			t.Errorf("ParseEnvelope(%.50q) = %v %q %q, want %v %q %q", tt.in, env.Kind, env.ID, env.Method, tt.kind, tt.id, tt.method)
		}
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	for _, in := range []string{
		``, `Welcome to Ubuntu 24.04`, `{}`, `{"jsonrpc":"2.0"}`, `{"id":1`, `{id:1}`,
		`{"method":"x"`, `{"method":1,"id":2}`, `"just a string"`, `{"a":"unterminated}`,
	} {
		if env, err := ParseEnvelope([]byte(in)); err == nil {
			t.Errorf("ParseEnvelope(%q) = %v, want an error", in, env.Kind)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
	f.Add([]byte(`{"result":{"a":["}"]},"id":"q"}`))
	f.Add([]byte(`{"id":"a\"b","method":"m"}`))
	f.Add([]byte(`{"id":"\u00e9\/","method":"m"}`))
	f.Add([]byte(`{"id":1.5e3,"result":{}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		env, err := ParseEnvelope(in)
		if err != nil {
			return
		}
		if env.Kind == KindRequest && (env.ID == nil || env.Method == nil) {
			t.Fatalf("request without id or method: %q", in)
		}
		// An id is only ever a JSON string, number or null: it goes
		// into the messages the bridge builds.
		if env.ID != nil && (!validID(env.ID) || !json.Valid(env.ID) || !json.Valid(ErrorFrame(env.ID, 1, "m", nil))) {
			t.Fatalf("id %q of %q is not a JSON string, number or null", env.ID, in)
		}
		// A string id's key is its value: the same for its JSON
		// re-encoding, as a peer that echoes it may send it.
		if env.ID != nil && env.ID[0] == '"' {
			var v string
			if utf8.Valid(env.ID) && json.Unmarshal(env.ID, &v) == nil {
				again, _ := json.Marshal(v)
				if IDKey(env.ID) != IDKey(again) {
					t.Fatalf("IDKey(%s) = %q but IDKey(%s) = %q", env.ID, IDKey(env.ID), again, IDKey(again))
				}
			}
		} else if env.ID != nil {
			IDKey(env.ID)
		}
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		// For a valid frame, the id is the one a JSON parser reads (a
		// repeated key aside, which parsers settle differently).
		if json.Valid(in) && env.Kind != KindBatch && env.ID != nil && json.Unmarshal(in, &m) == nil &&
			bytes.Count(in, []byte(`"id"`)) == 1 && !bytes.Equal(m.ID, env.ID) {
			t.Fatalf("ParseEnvelope(%q) read id %q, a parser %q", in, env.ID, m.ID)
		}
	})
}

// FuzzElements: a valid batch is split into exactly the elements a JSON
// parser sees.
func FuzzElements(f *testing.F) {
	f.Add([]byte(`[{"id":1,"result":{"s":"],"}},{"method":"n"},3]`))
	f.Add([]byte(` [ "a\"]" , [1,[2]] ,{}] `))
	f.Add([]byte(`[1,`))
	f.Fuzz(func(t *testing.T, in []byte) {
		elems, err := Elements(in)
		var want []json.RawMessage
		isArray := json.Unmarshal(in, &want) == nil
		if !isArray {
			return
		}
		if err != nil {
			t.Fatalf("Elements(%q) failed on a valid batch: %v", in, err)
		}
		if len(elems) != len(want) {
			t.Fatalf("Elements(%q) = %d elements, want %d", in, len(elems), len(want))
		}
		for i, e := range elems {
			if !bytes.Equal(e, want[i]) {
				t.Fatalf("element %d of %q = %q, want %q", i, in, e, want[i])
			}
		}
		if b := JoinBatch(elems); !json.Valid(b) {
			t.Fatalf("JoinBatch of %q is not JSON: %q", in, b)
		}
	})
}

func TestElements(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{` [ {"id":1,"method":"a"} ] `, []string{`{"id":1,"method":"a"}`}},
		{`[{"id":1,"result":{"s":"],"}},{"method":"n"},3]`, []string{`{"id":1,"result":{"s":"],"}}`, `{"method":"n"}`, `3`}},
	}
	for _, tt := range tests {
		elems, err := Elements([]byte(tt.in))
		if err != nil {
			t.Errorf("Elements(%q): %v", tt.in, err)
			continue
		}
		var got []string
		for _, e := range elems {
			got = append(got, string(e))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Elements(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{`{}`, `[`, `[1,`, `[1 2]`, `["a]`} {
		if _, err := Elements([]byte(in)); err == nil {
			t.Errorf("Elements(%q) succeeded, want an error", in)
		}
	}
}

func TestEnvelopeError(t *testing.T) {
	for in, want := range map[string]bool{
		`{"jsonrpc":"2.0","id":1,"result":{}}`:                        false,
		`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}`:   true,
		`{"error":{"code":1,"message":"x"},"jsonrpc":"2.0","id":"a"}`: true,
	} {
		env, err := ParseEnvelope([]byte(in))
		if err != nil || env.Kind != KindResponse || env.Error != want {
			t.Errorf("ParseEnvelope(%s) = %v error=%v, %v; want a response with error=%v", in, env.Kind, env.Error, err, want)
		}
	}
}

func TestSpliceID(t *testing.T) {
	msg := []byte(`[{"id":7,"method":"roots/list"}]`)
	elems, _ := Elements(msg)
	env, _ := ParseEnvelope(elems[0])
	got := SpliceID(elems[0], env.ID, []byte(`"m2m-ssh-1-1"`))
	if want := `{"id":"m2m-ssh-1-1","method":"roots/list"}`; string(got) != want {
		t.Fatalf("SpliceID = %s, want %s", got, want)
	}
}

// Every spelling of one id value has one key; different values differ.
func TestIDKey(t *testing.T) {
	same := [][]string{
		{`1`, `1.0`, `1e0`, `10e-1`, `0.1e1`},
		{`0`, `-0`, `0.0`, `0e5`},
		{`-12`, `-12.00`, `-1.2e1`},
		{`12345678901234567890123`, `12345678901234567890123.0`},
		{`"é"`, `"\u00e9"`, `"\u00E9"`},
		{`"a/b"`, `"a\/b"`},
		{`"q\"uote"`, `"q\u0022uote"`},
		{`null`},
	}
	for _, group := range same {
		key := IDKey([]byte(group[0]))
		for _, id := range group[1:] {
			if got := IDKey([]byte(id)); got != key {
				t.Errorf("IDKey(%s) = %q, IDKey(%s) = %q: want one key", group[0], key, id, got)
			}
		}
	}
	distinct := []string{`1`, `"1"`, `2`, `1.5`, `12345678901234567890122`, `12345678901234567890123`, `"é"`, `"e"`, `null`, `"null"`}
	seen := map[string]string{}
	for _, id := range distinct {
		k := IDKey([]byte(id))
		if prev, dup := seen[k]; dup {
			t.Errorf("IDKey(%s) = IDKey(%s) = %q: want different keys", id, prev, k)
		}
		seen[k] = id
	}
	// A huge exponent is not expanded.
	for _, id := range []string{"1e99999999", "1e-99999999", "1e" + strings.Repeat("9", 60)} {
		if k := IDKey([]byte(id)); k != id {
			t.Errorf("IDKey(%s) = %.40q…, want the spelling itself", id, k)
		}
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("a", previewLen-1) + "é" + "tail"
	cases := []struct{ in, want string }{
		{"{\"id\":1}\r\n", `{"id":1}`},
		{"short\n", "short"},
		{strings.Repeat("x", previewLen), strings.Repeat("x", previewLen)},
		{strings.Repeat("x", previewLen+1), strings.Repeat("x", previewLen) + "…"},
		// The cut falls inside "é": the whole character goes.
		{long, strings.Repeat("a", previewLen-1) + "…"},
	}
	for _, c := range cases {
		if got := Preview([]byte(c.in)); got != c.want {
			t.Errorf("Preview(%.20q…) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(Preview([]byte(c.in))) {
			t.Errorf("Preview(%.20q…) is not valid UTF-8", c.in)
		}
	}
}
