package wire

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// Expected outputs were produced with Node 20:
// JSON.stringify(JSON.parse(in)). node_test.go re-checks them, and many
// more, when node is installed.
func TestAppendCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"op": 0 , "a" : [1 , 2]}`, `{"op":0,"a":[1,2]}`},
		{`{"n":1e3}`, `{"n":1000}`},
		{`{"n":-0}`, `{"n":0}`},
		{`{"n":-0.0e7}`, `{"n":0}`},
		{`{"n":1e400}`, `{"n":null}`},
		{`{"n":-1e400}`, `{"n":null}`},
		{`{"n":12345678901234567890}`, `{"n":12345678901234567000}`},
		{`{"n":123456789012345678901}`, `{"n":123456789012345680000}`},
		{`{"n":9007199254740993}`, `{"n":9007199254740992}`},
		{`{"n":1e21}`, `{"n":1e+21}`},
		{`{"n":1e20}`, `{"n":100000000000000000000}`},
		{`{"n":0.000001}`, `{"n":0.000001}`},
		{`{"n":0.0000001}`, `{"n":1e-7}`},
		{`{"n":1.5e-7}`, `{"n":1.5e-7}`},
		{`{"n":1e-400}`, `{"n":0}`},
		{`{"n":5e-324}`, `{"n":5e-324}`},
		{`{"n":1.7976931348623157e308}`, `{"n":1.7976931348623157e+308}`},
		{`{"n":100.0}`, `{"n":100}`},
		{`{"n":1E+2}`, `{"n":100}`},
		{`{"n":123e-2}`, `{"n":1.23}`},
		{`{"n":1.0000000000000001}`, `{"n":1}`},
		{`{"n":1.2345678901234567e-7}`, `{"n":1.2345678901234566e-7}`},
		{`{"n":-42}`, `{"n":-42}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`{"a":1,"\u0061":2}`, `{"a":2}`},
		{`{"b":1,"2":2,"1":3,"a":4}`, `{"1":3,"2":2,"b":1,"a":4}`},
		{`{"a":1,"4294967294":2,"4294967295":3,"9007199254740991":4,"01":5,"0":6,"-1":7}`,
			`{"0":6,"4294967294":2,"a":1,"4294967295":3,"9007199254740991":4,"01":5,"-1":7}`},
		{`{"1":1,"1.0":2,"1e0":3,"a":{"10":1,"9":2}}`, `{"1":1,"1.0":2,"1e0":3,"a":{"9":2,"10":1}}`},
		{`{"__proto__":{"op":0},"x":1}`, `{"__proto__":{"op":0},"x":1}`},
		{`{"x":1,"__proto__":2,"__proto__":3}`, `{"x":1,"__proto__":3}`},
		{`{"s":"\u0041\/\b\f\n\r\t\u0001\u001f\u007f\u2028\u00e9"}`, "{\"s\":\"A/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\u2028é\"}"},
		{`{"s":"\ud800"}`, `{"s":"\ud800"}`},
		{`{"s":"\udc00\ud800"}`, `{"s":"\udc00\ud800"}`},
		{`{"s":"\uD83D\uDE00\uDBFF"}`, `{"s":"😀\udbff"}`},
		{`{"\u006fp":1}`, `{"op":1}`},
		{"{\"s\":\"\xe2\x82\"}", "{\"s\":\"\ufffd\"}"},
		{"{\"s\":\"\xff\"}", "{\"s\":\"\ufffd\"}"},
		{"{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\ufffd\ufffd\ufffd\"}"},
		{"{\"s\":\"\xc0\xaf\"}", "{\"s\":\"\ufffd\ufffd\"}"},
		{"{\"s\":\"\xf4\x90\x80\x80\"}", "{\"s\":\"\ufffd\ufffd\ufffd\ufffd\"}"},
		{"{\"s\":\"\xe0\x80\x7f\"}", "{\"s\":\"\ufffd\ufffd\x7f\"}"},
		{"{\"s\":\"\xf0\x90\x80\x80\"}", "{\"s\":\"\U00010000\"}"},
		{"{\"\xff\":1,\"\xfe\":2}", "{\"\ufffd\":2}"},
		{` [ ] `, `[]`},
		{`"x"`, `"x"`},
		{`true`, `true`},
	}
	for _, tt := range tests {
		got, err := AppendCanonical([]byte("prefix:"), []byte(tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if string(got) != "prefix:"+tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.in, got[len("prefix:"):], tt.want)
		}
		// Idempotent, as the reference's double round trip through Redis is.
		again, _ := AppendCanonical(nil, []byte(tt.want))
		if string(again) != tt.want {
			t.Errorf("%q: not idempotent: %q", tt.want, again)
		}
	}
	for _, bad := range []string{``, ` `, `{"a":1}{"b":2}`, "\ufeff{}", "{\"s\":\"a\x00b\"}", `{"a":01}`, `[1,]`, `{"a" 1}`, `nul`, `"\u12"`} {
		dst := []byte("keep")
		got, err := AppendCanonical(dst, []byte(bad))
		if !errors.Is(err, ReasonParse) || string(got) != "keep" {
			t.Errorf("%q: got %q, %v", bad, got, err)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIDTemplate(t *testing.T) {
	id := UUID([]byte("3d29dbb7-1111-4222-8333-444444444444"))
	tests := []struct{ in, want string }{
		// Spec §4 (observed): a missing id is appended last.
		{`{"op":0,"event":"NOID","data":[1,2],"intent":{"target":"GLOBAL"}}`,
			`{"op":0,"event":"NOID","data":[1,2],"intent":{"target":"GLOBAL"},"id":"3d29dbb7-1111-4222-8333-444444444444"}`},
		// An existing id keeps its position; its value of any type is replaced.
		{`{"id":"X-global","op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GLOBAL"}}`,
			`{"id":"3d29dbb7-1111-4222-8333-444444444444","op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GLOBAL"}}`},
		{`{"op":0,"id":{"x":[1]},"data":1}`, `{"op":0,"id":"3d29dbb7-1111-4222-8333-444444444444","data":1}`},
		{`{"id":5,"op":0,"id":7}`, `{"id":"3d29dbb7-1111-4222-8333-444444444444","op":0}`},
		{`{"\u0069d":null,"op":0}`, `{"id":"3d29dbb7-1111-4222-8333-444444444444","op":0}`},
		// Index keys stay first; id (a name) goes after them and the others.
		{`{"op":0,"1":2}`, `{"1":2,"op":0,"id":"3d29dbb7-1111-4222-8333-444444444444"}`},
		{`{}`, `{"id":"3d29dbb7-1111-4222-8333-444444444444"}`},
		{` { "op" : 0 , "data" : { "id" : 1 } } `, `{"op":0,"data":{"id":1},"id":"3d29dbb7-1111-4222-8333-444444444444"}`},
	}
	for _, tt := range tests {
		tm, err := NewIDTemplate([]byte(tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		got := tm.WithID([]byte("pre"), id)
		if string(got) != "pre"+tt.want || tm.Len() != len(tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got[3:], tt.want)
		}
	}
	// Each recipient gets its own id, and the template is not modified.
	tm, _ := NewIDTemplate([]byte(`{"id":"A","op":0,"intent":{"target":"GLOBAL"}}`))
	var g UUIDGenerator
	seen := map[string]bool{}
	for range 100 {
		u := g.New()
		msg := tm.WithID(nil, u)
		if !bytes.Contains(msg, []byte(`"id":"`+u.String()+`"`)) || seen[string(msg)] {
			t.Fatalf("bad copy %s", msg)
		}
		seen[string(msg)] = true
	}
	for _, bad := range []struct {
		doc string
		r   Reason
	}{{`[1]`, ReasonNotObject}, {`"x"`, ReasonNotObject}, {`{"op":0`, ReasonParse}, {`{} x`, ReasonParse}, {`[`, ReasonParse}} {
		if _, err := NewIDTemplate([]byte(bad.doc)); !errors.Is(err, bad.r) {
			t.Errorf("%s: %v, want %v", bad.doc, err, bad.r)
		}
	}
	// Patching into a reused buffer does not allocate.
	buf := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() { buf = tm.WithID(buf[:0], id) }); allocs != 0 {
		t.Errorf("WithID allocates %v", allocs)
	}
}

func TestEnvelopeForwardHelpers(t *testing.T) {
	doc := []byte(`{ "id" : "Y-reply", "op" : 5, "data" : 1e3, "intent" : { "target" : "DIRECT", "identifier" : "abc" } }`)
	env, err := ParseEnvelope(doc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.AppendCanonical(nil)
	if want := `{"id":"Y-reply","op":5,"data":1000,"intent":{"target":"DIRECT","identifier":"abc"}}`; err != nil || string(out) != want {
		t.Fatalf("REPLY forward = %s, %v", out, err)
	}
	if string(env.ID.Text()) != "Y-reply" || string(env.Identifier.Text()) != "abc" {
		t.Fatalf("id %s identifier %s", env.ID, env.Identifier)
	}
	tm, err := env.IDTemplate()
	if err != nil || !strings.HasPrefix(string(tm.WithID(nil, UUID{})), `{"id":"`) {
		t.Fatalf("template %v", err)
	}
	deep := Limits{MaxDepth: 2}
	if _, err := deep.AppendCanonical(nil, []byte(`[[[]]]`)); err != ReasonTooDeep {
		t.Fatalf("depth: %v", err)
	}
	if _, err := deep.NewIDTemplate([]byte(`{"a":{"b":{}}}`)); err != ReasonTooDeep {
		t.Fatalf("depth: %v", err)
	}
}

func TestMessages(t *testing.T) {
	// Exact bytes from spec §4 (observed on the reference).
	id := UUID([]byte("5cba6e20-5df7-44ad-819e-dfb7bbce494d"))
	if got := string(AppendIdentifyReply(nil, id, 3000)); got != `{"op":1,"data":{"id":"5cba6e20-5df7-44ad-819e-dfb7bbce494d","ping":3000}}` {
		t.Errorf("identify reply %s", got)
	}
	if got := string(AppendIdentifyReply(nil, id, 30000)); !strings.HasSuffix(got, `"ping":30000}}`) {
		t.Errorf("identify reply %s", got)
	}
	for reason, want := range map[string]string{
		"IDENTIFY_FAILED": MsgIdentifyFailed, "MESSAGE_TOO_BIG": MsgMessageTooBig, "PING_TIMEOUT": MsgPingTimeout,
	} {
		if got := string(AppendDisconnect(nil, reason)); got != want {
			t.Errorf("%s: %s != %s", reason, got, want)
		}
	}
	if MsgIdentifyFailed != `{"op":2,"data":"IDENTIFY_FAILED"}` || MsgMessageTooBig != `{"op":2,"data":"MESSAGE_TOO_BIG"}` ||
		MsgPingTimeout != `{"op":2,"data":"PING_TIMEOUT"}` || MsgPing != `{"op":3}` || MsgPong != `{"op":4}` {
		t.Error("constant drifted from the spec")
	}
	if got := string(AppendDisconnect(nil, "a\"\n")); got != `{"op":2,"data":"a\"\n"}` {
		t.Errorf("escaping: %s", got)
	}
	// Every server message is something ParseEnvelope understands.
	for _, m := range []string{MsgIdentifyFailed, MsgPing, MsgPong, string(AppendIdentifyReply(nil, id, 1))} {
		if _, err := ParseEnvelope([]byte(m)); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestUUIDGenerator(t *testing.T) {
	var g UUIDGenerator // zero value is usable
	seen := make(map[UUID]bool)
	for range 3 * rekeyEvery {
		u := g.New()
		if !uuidRE.Match(u[:]) {
			t.Fatalf("malformed %s", u)
		}
		if seen[u] {
			t.Fatalf("duplicate %s", u)
		}
		seen[u] = true
	}
	if allocs := testing.AllocsPerRun(1000, func() { g.New() }); allocs != 0 {
		t.Errorf("New allocates %v", allocs)
	}
}
