package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// feedAll feeds chunks to d and records every frame as "doc" text or
// "bad(<label>):<bytes>", then the final error if any as "err:<label>".
func feedAll(d *Decoder, chunks ...[]byte) []string {
	var got []string
	for _, c := range chunks {
		err := d.Feed(c, func(f Frame) error {
			if f.Bad != ReasonNone {
				got = append(got, fmt.Sprintf("bad(%s):%s", f.Bad.Label(), f.Doc))
			} else {
				got = append(got, string(f.Doc))
			}
			return nil
		})
		if err != nil {
			var r Reason
			if errors.As(err, &r) {
				return append(got, "err:"+r.Label())
			}
			return append(got, "err:"+err.Error())
		}
	}
	return got
}

func bs(s string) []byte { return []byte(s) }

func TestDecoderTable(t *testing.T) {
	big := `{"op":0,"data":"` + strings.Repeat("x", 40061-len(`{"op":0,"data":""}`)) + `"}`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"single", `{"op":3}`, []string{`{"op":3}`}},
		{"coalesced pair (spec §12 CAT)", `{"op":3}{"op":3}`, []string{`{"op":3}`, `{"op":3}`}},
		{"whitespace between and around", " \r\n\t{\"op\":3}\n\n {\"op\":4} \n", []string{`{"op":3}`, `{"op":4}`}},
		{"inner whitespace kept verbatim", `{ "op" : 0 , "a" : [ 1 , 2 ] }`, []string{`{ "op" : 0 , "a" : [ 1 , 2 ] }`}},
		{"braces and escapes inside strings", `{"s":"}{\"\\"}{"op":4}`, []string{`{"s":"}{\"\\"}`, `{"op":4}`}},
		{"unicode escapes and raw utf8", `{"s":"\u00e9\ud800é"}`, []string{`{"s":"\u00e9\ud800é"}`}},
		{"invalid utf8 inside strings is opaque", "{\"s\":\"\xff\xfe\"}", []string{"{\"s\":\"\xff\xfe\"}"}},
		{"top-level scalars and arrays", `[1,2] "x" true null 12 -0.5e+3 {}`, []string{`[1,2]`, `"x"`, `true`, `null`, `12`, `-0.5e+3`, `{}`}},
		{"number ends at the next document", `1{"op":3}`, []string{`1`, `{"op":3}`}},
		{"pending top-level number is not emitted", `{"op":3} 12`, []string{`{"op":3}`}},
		{"nested empty containers", `{"a":{},"b":[],"c":[{}],"d":[[]]}`, []string{`{"a":{},"b":[],"c":[{}],"d":[[]]}`}},

		// Malformed: reported once, then resynchronised.
		{"unquoted keys", `{op:3}{"op":4}`, []string{`bad(parse):{o`, `{"op":4}`}},
		{"NaN value", `{"op":0,"data":NaN}{"op":4}`, []string{`bad(parse):{"op":0,"data":N`, `{"op":4}`}},
		{"nested objects after the error are skipped, not emitted", `{"x":undefined,"data":{"op":0,"intent":{"target":"GLOBAL"}}}{"op":4}`,
			[]string{`bad(parse):{"x":u`, `{"op":4}`}},
		{"raw newline in string", "{\"s\":\"a\nb\"}{\"op\":4}", []string{"bad(parse):{\"s\":\"a\n", `{"op":4}`}},
		{"bad escape then quote", `{"s":"\x"}{"op":4}`, []string{`bad(parse):{"s":"\x`, `{"op":4}`}},
		{"short \\u escape: the quote closes the string", `{"s":"\u12"}{"op":4}`, []string{`bad(parse):{"s":"\u12"`, `{"op":4}`}},
		{"mismatched closer", `{"a":1]{"op":4}`, []string{`bad(parse):{"a":1]`, `{"op":4}`}},
		{"trailing comma", `{"a":1,}{"op":4}`, []string{`bad(parse):{"a":1,}`, `{"op":4}`}},
		{"leading zero", `{"a":01}{"op":4}`, []string{`bad(parse):{"a":01`, `{"op":4}`}},
		{"single quotes", `{'op':3}{"op":4}`, []string{`bad(parse):{'`, `{"op":4}`}},
		{"garbage before a document", "hello\r\n{\"op\":3}", []string{`bad(parse):h`, `{"op":3}`}},
		{"garbage between documents", `{"op":3}xx yy{"op":4}`, []string{`{"op":3}`, `bad(parse):x`, `{"op":4}`}},
		{"stray closer", `}{"op":4}`, []string{`bad(parse):}`, `{"op":4}`}},
		{"broken literal right before a document", `tru{"op":4}`, []string{`bad(parse):tru`, `{"op":4}`}},
		{"BOM is garbage (JSON.parse rejects it)", "\xef\xbb\xbf{\"op\":3}", []string{"bad(parse):\xef", `{"op":3}`}},
		{"NUL is garbage", "\x00{\"op\":3}", []string{"bad(parse):\x00", `{"op":3}`}},
		{"skipper counts brackets of any type", `[1,}]{"op":4}`, []string{`bad(parse):[1,}`, `bad(parse):]`, `{"op":4}`}},
		{"too big (spec §12 BIG)", big, []string{"err:too_big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := feedAll(NewDecoder(Limits{}), bs(tt.in))
			if !equalStrings(got, tt.want) {
				t.Fatalf("whole:\n got %q\nwant %q", got, tt.want)
			}
			// Same result byte by byte, and for every two-way split.
			d := NewDecoder(Limits{})
			var chunks [][]byte
			for i := range len(tt.in) {
				chunks = append(chunks, bs(tt.in[i:i+1]))
			}
			if got := feedAll(d, chunks...); !equalStrings(got, tt.want) {
				t.Fatalf("byte by byte:\n got %q\nwant %q", got, tt.want)
			}
			if len(tt.in) > 2000 {
				return
			}
			for i := range len(tt.in) + 1 {
				if got := feedAll(NewDecoder(Limits{}), bs(tt.in[:i]), bs(tt.in[i:])); !equalStrings(got, tt.want) {
					t.Fatalf("split at %d:\n got %q\nwant %q", i, got, tt.want)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// docOfSize returns {"d":"xxx…"} of exactly n bytes.
func docOfSize(n int) string {
	return `{"d":"` + strings.Repeat("x", n-len(`{"d":""}`)) + `"}`
}

func TestDecoderSizeLimit(t *testing.T) {
	const max = 100
	l := Limits{MaxDocumentSize: max}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"exactly the limit", docOfSize(max), []string{docOfSize(max)}},
		{"one over", docOfSize(max + 1), []string{"err:too_big"}},
		{"whitespace does not count", "   \n" + docOfSize(max) + "\n  ", []string{docOfSize(max)}},
		{"earlier documents are emitted first", `{"op":3}` + docOfSize(max+1) + `{"op":4}`, []string{`{"op":3}`, "err:too_big"}},
		{"two documents each under the limit, together over it", docOfSize(60) + docOfSize(60), []string{docOfSize(60), docOfSize(60)}},
		{"top-level number of exactly the limit", strings.Repeat("1", max) + " ", []string{strings.Repeat("1", max)}},
		{"top-level number one over", strings.Repeat("1", max+1) + " ", []string{"err:too_big"}},
		{"malformed document counts", `{"x":NaN,"d":"` + strings.Repeat("x", max) + `"}`, []string{`bad(parse):{"x":N`, "err:too_big"}},
		{"garbage run counts", strings.Repeat("z", max+1), []string{"bad(parse):z", "err:too_big"}},
		{"garbage run of exactly the limit, then a document", strings.Repeat("z", max) + `{"op":3}`, []string{"bad(parse):z", `{"op":3}`}},
		{"unbalanced skip is bounded", `{"a":"b" "` + strings.Repeat("{", 200), []string{`bad(parse):{"a":"b" "`, "err:too_big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := feedAll(NewDecoder(l), bs(tt.in)); !equalStrings(got, tt.want) {
				t.Fatalf("whole:\n got %q\nwant %q", got, tt.want)
			}
			for i := range len(tt.in) + 1 {
				if got := feedAll(NewDecoder(l), bs(tt.in[:i]), bs(tt.in[i:])); !equalStrings(got, tt.want) {
					t.Fatalf("split at %d:\n got %q\nwant %q", i, got, tt.want)
				}
			}
		})
	}
}

func TestDecoderTooBigIsSticky(t *testing.T) {
	d := NewDecoder(Limits{MaxDocumentSize: 10})
	if err := d.Feed(bs(`{"a":"0123456789"}`), func(Frame) error { return nil }); !errors.Is(err, ReasonTooBig) {
		t.Fatalf("err = %v, want too_big", err)
	}
	called := false
	if err := d.Feed(bs(`{}`), func(Frame) error { called = true; return nil }); !errors.Is(err, ReasonTooBig) || called {
		t.Fatalf("after failure: err = %v, called = %v", err, called)
	}
	d.Reset()
	if got := feedAll(d, bs(`{}`)); !equalStrings(got, []string{`{}`}) {
		t.Fatalf("after Reset: %q", got)
	}
}

func TestDecoderDepthLimit(t *testing.T) {
	l := Limits{MaxDepth: 3}
	ok := `{"a":[{"b":1}]}`
	deep := `{"a":[{"b":[1]}]}`
	got := feedAll(NewDecoder(l), bs(ok+deep+`{"op":4}`))
	want := []string{ok, `bad(too_deep):{"a":[{"b":[`, `{"op":4}`}
	if !equalStrings(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// Far deeper than the bit stack's first word, default limit.
	n := DefaultMaxDepth
	doc := strings.Repeat("[", n) + strings.Repeat("]", n)
	if got := feedAll(NewDecoder(Limits{}), bs(doc)); !equalStrings(got, []string{doc}) {
		t.Fatalf("depth %d rejected", n)
	}
	doc = strings.Repeat("[", n+1) + strings.Repeat("]", n+1)
	got = feedAll(NewDecoder(Limits{}), bs(doc+`{"op":4}`))
	if len(got) != 2 || !strings.HasPrefix(got[0], "bad(too_deep)") || got[1] != `{"op":4}` {
		t.Fatalf("depth %d: %q", n+1, got)
	}
}

func TestDecoderEmitError(t *testing.T) {
	stop := errors.New("stop")
	d := NewDecoder(Limits{})
	n := 0
	err := d.Feed(bs(`{}{}{}`), func(Frame) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err = %v after %d frames", err, n)
	}
	if err := d.Feed(bs(`{}`), func(Frame) error { n++; return nil }); err != stop || n != 1 {
		t.Fatalf("decoder not stopped: %v %d", err, n)
	}
}

func TestDecoderZeroCopyAndBuffering(t *testing.T) {
	d := NewDecoder(Limits{})
	in := bs(`{"op":3}{"op":4`)
	var first []byte
	if err := d.Feed(in, func(f Frame) error { first = f.Doc; return nil }); err != nil {
		t.Fatal(err)
	}
	if &first[0] != &in[0] {
		t.Error("document inside one Feed call was copied")
	}
	if d.Pending() != len(`{"op":4`) {
		t.Errorf("Pending = %d", d.Pending())
	}
	var second string
	if err := d.Feed(bs(`}`), func(f Frame) error { second = string(f.Doc); return nil }); err != nil {
		t.Fatal(err)
	}
	if second != `{"op":4}` || d.Pending() != 0 {
		t.Errorf("second = %q, pending %d", second, d.Pending())
	}
	// A large carried-over buffer is not retained.
	for _, part := range []string{docOfSize(20000)[:10000], docOfSize(20000)[10000:]} {
		if err := d.Feed(bs(part), func(Frame) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if cap(d.buf) > retainBuf {
		t.Errorf("retained %d bytes", cap(d.buf))
	}
}

// A stream of many documents split at every possible pair of points yields
// the same frames; exercises every scanner state at a chunk boundary.
func TestDecoderEverySplit(t *testing.T) {
	stream := `{"id":"x","op":0,"event":"E","data":{"n":-12.5e-3,"b":[true,false,null],"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"},"intent":{"target":"GLOBAL","identifier":null}}` +
		"\n" + `[0,1e5,2E-2,0.5] "tail" {bad} {"op":4}`
	want := feedAll(NewDecoder(Limits{}), bs(stream))
	if len(want) != 5 {
		t.Fatalf("unexpected baseline %q", want)
	}
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j += 7 {
			got := feedAll(NewDecoder(Limits{}), bs(stream[:i]), bs(stream[i:j]), bs(stream[j:]))
			if !equalStrings(got, want) {
				t.Fatalf("split %d,%d:\n got %q\nwant %q", i, j, got, want)
			}
		}
	}
	if !bytes.Contains(bs(want[3]), bs("bad(parse)")) {
		t.Fatalf("expected {bad} to be malformed: %q", want)
	}
}
