package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Seed corpora live in testdata/fuzz/Fuzz*/ (known-bad inputs: unterminated
// strings, deep nesting, lone surrogates, huge numbers, coalesced documents,
// garbage between documents, oversized documents, invalid UTF-8).

// fuzzLimits are small so that the fuzzer reaches the size and depth bounds.
var fuzzLimits = Limits{MaxDocumentSize: 256, MaxDepth: 8}

type fuzzFrame struct {
	doc string
	bad Reason
}

func decodeChunks(t *testing.T, chunks [][]byte) ([]fuzzFrame, error) {
	d := NewDecoder(fuzzLimits)
	var frames []fuzzFrame
	var err error
	for _, c := range chunks {
		err = d.Feed(c, func(f Frame) error {
			if len(f.Doc) > fuzzLimits.MaxDocumentSize {
				t.Fatalf("frame of %d bytes exceeds the limit", len(f.Doc))
			}
			if f.Bad == ReasonNone {
				// Every emitted document is valid JSON within the limits.
				if _, err := fuzzLimits.AppendCanonical(nil, f.Doc); err != nil {
					t.Fatalf("emitted %q, which the parser rejects: %v", f.Doc, err)
				}
			} else if len(f.Doc) == 0 && f.Bad != ReasonTooDeep {
				t.Fatalf("empty malformed frame")
			}
			frames = append(frames, fuzzFrame{string(f.Doc), f.Bad})
			return nil
		})
		if d.Pending() > fuzzLimits.MaxDocumentSize {
			t.Fatalf("pending %d bytes", d.Pending())
		}
		if err != nil {
			break
		}
	}
	if err != nil && err != ReasonTooBig {
		t.Fatalf("unexpected error %v", err)
	}
	return frames, err
}

func sameFrames(a, b []fuzzFrame) bool {
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

// FuzzDecoder: feeding the input split at arbitrary points (chosen by
// splits) or byte by byte yields the same frames and error as feeding it
// whole; no frame or buffer exceeds the limits; emitted documents are valid;
// and the streaming validator agrees with the one-shot parser.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`{"op":3}{"op":3}`), []byte{3})
	f.Add([]byte(`{"op":0,"data":"\ud800"} xx {"op":4}`), []byte{1, 7, 2})
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		whole, wholeErr := decodeChunks(t, [][]byte{data})

		var chunks [][]byte
		rest := data
		for _, s := range splits {
			n := min(int(s), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		split, splitErr := decodeChunks(t, chunks)
		if !sameFrames(whole, split) || wholeErr != splitErr {
			t.Fatalf("split %v changed the result:\nwhole %v %v\nsplit %v %v", splits, whole, wholeErr, split, splitErr)
		}
		if len(data) <= 4096 {
			var bytewise [][]byte
			for i := range data {
				bytewise = append(bytewise, data[i:i+1])
			}
			if b, err := decodeChunks(t, bytewise); !sameFrames(whole, b) || err != wholeErr {
				t.Fatalf("byte by byte changed the result:\nwhole %v %v\nbytes %v %v", whole, wholeErr, b, err)
			}
		}

		// Agreement with the one-shot parser on single documents. A top-level
		// number stays pending until a delimiter, so a space is added.
		trimmed := bytes.Trim(data, " \t\r\n")
		_, parseErr := fuzzLimits.AppendCanonical(nil, data)
		got, gotErr := decodeChunks(t, [][]byte{append(bytes.Clone(data), ' ')})
		single := gotErr == nil && len(got) == 1 && got[0].bad == ReasonNone && got[0].doc == string(trimmed)
		if parseErr == nil && !single {
			t.Fatalf("parser accepts %q, decoder gives %v %v", data, got, gotErr)
		}
		if single && parseErr != nil && parseErr != ReasonTooBig { // whitespace counts for the one-shot size check
			t.Fatalf("decoder accepts %q as one document, parser says %v", data, parseErr)
		}
	})
}

// FuzzParseEnvelope: never panics, errors are Reasons, and classification
// survives the reference's Redis round trip (JSON.stringify then JSON.parse
// in another worker): parsing the canonical form gives the same result, the
// canonical form is a fixed point, and an EVENT template carries the id.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"op":0,"intent":{"target":"GLOBAL"}}`))
	f.Add([]byte(`{"op":1,"data":{"group":"g","token":"secret"}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		env, err := fuzzLimits.ParseEnvelope(doc)
		var r Reason
		if err != nil && !errors.As(err, &r) {
			t.Fatalf("error %v is not a Reason", err)
		}
		canon, cerr := fuzzLimits.AppendCanonical(nil, doc)
		syntaxErr := r == ReasonParse || r == ReasonTooDeep || r == ReasonTooBig
		if syntaxErr {
			if cerr != r {
				t.Fatalf("envelope says %v, canonical says %v", r, cerr)
			}
			return
		}
		if cerr != nil {
			t.Fatalf("envelope parsed (%v) but canonical failed: %v", err, cerr)
		}
		// The canonical form can be longer than the input (invalid UTF-8
		// becomes 3-byte U+FFFD, 1e20 becomes 21 digits), so it is
		// re-read without the size limit, as the reference's Redis
		// subscriber does.
		big := Limits{MaxDocumentSize: 1 << 20, MaxDepth: fuzzLimits.MaxDepth}
		if again, _ := big.AppendCanonical(nil, canon); !bytes.Equal(again, canon) {
			t.Fatalf("canonical form is not a fixed point:\n%q\n%q", canon, again)
		}
		env2, err2 := big.ParseEnvelope(canon)
		if err2 != err || env2.Op != env.Op || env2.Target != env.Target {
			t.Fatalf("round trip changed the classification: %v/%v/%v → %v/%v/%v", env.Op, env.Target, err, env2.Op, env2.Target, err2)
		}
		k1, ok1 := env.Identifier.MapKey()
		k2, ok2 := env2.Identifier.MapKey()
		g1, _ := env.Identify.Group.MapKey()
		g2, _ := env2.Identify.Group.MapKey()
		if k1 != k2 || ok1 != ok2 || g1 != g2 || env.Identify.Accept("secret") != env2.Identify.Accept("secret") {
			t.Fatalf("round trip changed identifier/group/accept: %q/%q %q/%q", k1, k2, g1, g2)
		}
		tm, terr := fuzzLimits.NewIDTemplate(doc)
		if r == ReasonNotObject {
			if terr != ReasonNotObject {
				t.Fatalf("template of a non-object: %v", terr)
			}
			return
		}
		if terr != nil {
			if terr == ReasonTooBig { // the appended id can push it over
				return
			}
			t.Fatalf("template: %v", terr)
		}
		var g UUIDGenerator
		u := g.New()
		msg := tm.WithID(nil, u)
		env3, err3 := big.ParseEnvelope(msg)
		p := parser{doc: msg, maxDepth: big.MaxDepth}
		var id [1]Value
		if r := p.fields([]string{"id"}, id[:]); r != ReasonNone || err3 != err || env3.Op != env.Op || string(id[0].Text()) != u.String() {
			t.Fatalf("patched message %q: %v %v id %s", msg, r, err3, id[0])
		}
	})
}
