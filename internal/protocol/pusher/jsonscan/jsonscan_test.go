package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzValue: Value accepts a whole input exactly when encoding/json does
// (below the nesting limit, past which Value declines and callers fall
// back to encoding/json). Seeds are near misses of the grammar.
func FuzzValue(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"s\u00e9\n\/"]}`, `01`, `1.`, `-`, `1e`, `1e+`, `tru`, `nul`,
		`"\x"`, `"\u12"`, `"\ud800"`, `{"a":1,}`, `[1,]`, `"x`, `{"a" 1}`, `{1:2}`, "\"\xff\"", "\"\x01\"",
		`[` + `]`, `{}`, ` 1`, `1 `, `[[[[[[[[[[]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		accepted := Value(b, 0) == len(b) && len(b) > 0
		valid := json.Valid(b) && len(b) > 0 && b[0] != ' ' && b[0] != '\t' && b[0] != '\n' && b[0] != '\r' &&
			len(bytes.TrimRight(b, " \t\r\n")) == len(b)
		if accepted && !valid {
			t.Fatalf("Value accepted %q, encoding/json does not", b)
		}
		if valid && !accepted && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) < maxScanDepth {
			t.Fatalf("Value declined valid %q", b)
		}
		if accepted {
			_ = Object(b, func(k, v []byte) bool { return json.Valid(v) || t.Failed() })
			_ = Array(b, func(v []byte) bool {
				if !json.Valid(v) {
					t.Fatalf("element %q of %q", v, b)
				}
				return true
			})
		}
	})
}

func TestObjectAndArray(t *testing.T) {
	var keys, vals []string
	if !Object([]byte(`{ "a" : 1 , "b":{"c":[2]},"a":"x"}`), func(k, v []byte) bool {
		keys, vals = append(keys, string(k)), append(vals, string(v))
		return true
	}) || len(keys) != 3 || keys[1] != "b" || vals[1] != `{"c":[2]}` || vals[2] != `"x"` {
		t.Fatalf("Object: %q %q", keys, vals)
	}
	for _, s := range []string{`{"\u0061":1}`, `{"a":1}x`, `{"a":1`, `[1]`, `{"a":1,}`} {
		if Object([]byte(s), func(k, v []byte) bool { return true }) {
			t.Errorf("Object accepted %q", s)
		}
	}
	n := 0
	if !Array([]byte(`[ "a" ,"b",1 ]`), func([]byte) bool { n++; return true }) || n != 3 {
		t.Fatalf("Array: %d", n)
	}
	if Array([]byte(`[1,]`), func([]byte) bool { return true }) || !Array([]byte(`[ ]`), nil) {
		t.Fatal("Array edge cases")
	}
	if s, ok := PlainString([]byte(`"private-a"`)); !ok || string(s) != "private-a" {
		t.Fatal("PlainString")
	}
	for _, s := range []string{`"a\"b"`, `"é"`, `1`, `"a`, `"a"x`} {
		if _, ok := PlainString([]byte(s)); ok {
			t.Errorf("PlainString accepted %q", s)
		}
	}
}

// FuzzAppendUnquoteASCII: what it decodes, encoding/json decodes the same.
func FuzzAppendUnquoteASCII(f *testing.F) {
	for _, s := range []string{`"a\"b\\c\/\b\f\n\r\t"`, `"\u0041"`, `"é"`, `"a"b"`, `"\"`, `"a`, `""`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, ok := AppendUnquoteASCII(nil, v)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(v, &want); err != nil || string(got) != want {
			t.Fatalf("AppendUnquoteASCII(%q) = %q; encoding/json %q, %v", v, got, want, err)
		}
	})
}
