package jsonrpc

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	`{}`, `[]`, ` {"a":[1,-2.5e+3,0,true,false,null,"\u00e9\n\"\\\/"]} `, `"s"`, `0`, `-0.0E-1`,
	`{"jsonrpc":"2.0","id":3,"result":nope}}}`, `{"id":Infinity,"result":{}}`, `{"id":1x}`,
	`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `"\x"`, `"\u12g4"`, "\"a\tb\"", `"abc`,
	`{"a"}`, `{"a":}`, `{,}`, `[1 2]`, `tru`, `nul`, `{"a":1}x`, ``, ` `, "\"\xff\xfe\"",
	`"` + strings.Repeat("long string é ✓ ", 40) + `"`, `"` + strings.Repeat("x", 31) + `\"` + `"`,
	strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
	strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
	strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
}

// Valid accepts exactly what json.Valid accepts.
func TestValidJSON(t *testing.T) {
	for _, in := range validCases {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("Valid(%.60q) = %v, json.Valid says %v", in, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, in := range validCases[:30] {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := Valid(in), json.Valid(in); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", in, got, want)
		}
	})
}

func TestValidID(t *testing.T) {
	for in, want := range map[string]bool{
		`1`: true, `-1.5e3`: true, `"a\"b"`: true, `null`: true, `"m2m-ssh-1-1"`: true,
		`1x`: false, `Infinity`: false, `NaN`: false, `{}`: false, `[1]`: false, `true`: false,
		`"a`: false, `nullx`: false, ``: false, `01`: false, `"\q"`: false,
	} {
		if got := validID([]byte(in)); got != want {
			t.Errorf("validID(%q) = %v, want %v", in, got, want)
		}
	}
}

// BenchmarkValidJSON checks a 1 MiB result two ways: the test blob, with
// an escape every few bytes (the worst case for the validator's fast
// path), and base64, as an image result carries.
func BenchmarkValidJSON(b *testing.B) {
	frames := []struct {
		name  string
		frame []byte
	}{
		{"blob", toolResult(1, 1<<20)},
		{"base64", []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","data":"` + strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 1<<20/24) + `"}]}}`)},
	}
	for _, f := range frames {
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{{"Valid", Valid}, {"json.Valid", json.Valid}} {
			b.Run(f.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(f.frame)))
				for b.Loop() {
					if !v.valid(f.frame) {
						b.Fatal("not valid")
					}
				}
			})
		}
	}
}

func TestValidFrameTwoIDs(t *testing.T) {
	for in, want := range map[string]bool{
		`{"id":1,"result":{}}`:                    false,
		`{"id":1,"result":{},"id":"0"}`:           true,
		`[{"id":1},{"id":2,"x":{"id":3,"id":4}}]`: false,
		`[{"id":1,"result":1,"id":2}]`:            true,
		`{"id":1,"result":{"id":1,"id":2}}`:       false,
		`{"i\u0064":1,"id":2,"result":{}}`:        true,
		`[[{"id":1,"id":2}]]`:                     false,
	} {
		ok, got := ValidFrame([]byte(in))
		if !ok || got != want {
			t.Errorf("ValidFrame(%s) = %v, two ids %v; want two ids %v", in, ok, got, want)
		}
	}
}
