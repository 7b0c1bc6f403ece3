package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEnvelopeChecklist(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		op     Op
		target Target
		reason Reason
	}{
		// #4: invalid JSON, non-object, non-numeric or unknown op → silently ignored.
		{"#4 garbage", `hello`, 0, 0, ReasonParse},
		{"#4 two coalesced documents are not one document", `{"op":3}{"op":3}`, 0, 0, ReasonParse},
		{"#4 unterminated", `{"op":3`, 0, 0, ReasonParse},
		{"#4 BOM", "\ufeff{\"op\":3}", 0, 0, ReasonParse},
		{"#4 array", `[1,2]`, 0, 0, ReasonNotObject},
		{"#4 null", `null`, 0, 0, ReasonNotObject},
		{"#4 string op", `{"op":"0","intent":{"target":"GLOBAL"}}`, 0, 0, ReasonUnknownOp},
		{"#4 missing op", `{"intent":{"target":"GLOBAL"}}`, 0, 0, ReasonUnknownOp},
		{"#4 op 6", `{"op":6}`, 0, 0, ReasonUnknownOp},
		{"#4 op 0.5", `{"op":0.5}`, 0, 0, ReasonUnknownOp},
		{"#4 op -1", `{"op":-1}`, 0, 0, ReasonUnknownOp},
		{"#4 op null", `{"op":null}`, 0, 0, ReasonUnknownOp},
		{"op 1.0 is IDENTIFY (=== on doubles)", `{"op":1.0,"data":{}}`, OpIdentify, 0, 0},
		{"op -0 is EVENT", `{"op":-0,"intent":{"target":"GLOBAL"}}`, OpEvent, TargetGlobal, 0},
		{"op 5e0 is REPLY", `{"op":5e0,"intent":{"target":"GLOBAL"}}`, OpReply, TargetGlobal, 0},
		{"op 1.0000000000000001 rounds to 1", `{"op":1.0000000000000001,"data":{}}`, OpIdentify, 0, 0},
		{"escaped key o\\u0070 is op", `{"o\u0070":3}`, OpPing, 0, 0},
		{"duplicate op: last wins", `{"op":0,"op":3}`, OpPing, 0, 0},
		{"whitespace anywhere", " \n{ \"op\" :\t3 }\r\n", OpPing, 0, 0},
		// #7: IDENTIFY without data → no reply at all.
		{"#7 identify without data", `{"op":1}`, 0, 0, ReasonIdentifyNoData},
		{"#7 identify with data null", `{"op":1,"data":null}`, 0, 0, ReasonIdentifyNoData},
		{"#6 identify", `{"op":1,"data":{"group":"g1","token":"secret"}}`, OpIdentify, 0, 0},
		{"identify with string data parses (then fails Accept)", `{"op":1,"data":"x"}`, OpIdentify, 0, 0},
		// #9: EVENT/REPLY need intent.target in {GLOBAL, GROUP, DIRECT}, case-sensitive.
		{"#9 global", `{"op":0,"intent":{"target":"GLOBAL"}}`, OpEvent, TargetGlobal, 0},
		{"#9 group", `{"op":0,"intent":{"target":"GROUP","identifier":"g1"}}`, OpEvent, TargetGroup, 0},
		{"#9 direct reply", `{"op":5,"intent":{"target":"DIRECT","identifier":"u"}}`, OpReply, TargetDirect, 0},
		{"#9 escaped target", `{"op":0,"intent":{"target":"\u0047LOBAL"}}`, OpEvent, TargetGlobal, 0},
		{"#9 lowercase (spec §12 LOWER)", `{"op":5,"event":"LOWER","data":5,"intent":{"target":"global"}}`, 0, 0, ReasonBadTarget},
		{"#9 no intent (spec §12 NOINTENT)", `{"op":0,"event":"NOINTENT","data":4}`, 0, 0, ReasonNoIntent},
		{"#9 intent null", `{"op":0,"intent":null}`, 0, 0, ReasonNoIntent},
		{"#9 intent is a string", `{"op":0,"intent":"GLOBAL"}`, 0, 0, ReasonBadTarget},
		{"#9 intent is an array", `{"op":0,"intent":["GLOBAL"]}`, 0, 0, ReasonBadTarget},
		{"#9 target missing", `{"op":0,"intent":{}}`, 0, 0, ReasonBadTarget},
		{"#9 target not a string", `{"op":0,"intent":{"target":1}}`, 0, 0, ReasonBadTarget},
		{"#9 intent ignored for PING", `{"op":3,"intent":null}`, OpPing, 0, 0},
		// #17, #19.
		{"#17 ping", `{"op":3}`, OpPing, 0, 0},
		{"pong", `{"op":4}`, OpPong, 0, 0},
		{"#19 client disconnect is parsed; the caller ignores it", `{"op":2,"data":"NO_REASON"}`, OpDisconnect, 0, 0},
		// Our own bound.
		{"too deep", `{"op":3,"d":` + strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth) + `}`, 0, 0, ReasonTooDeep},
		{"deep but within the bound", `{"op":3,"d":` + strings.Repeat("[", DefaultMaxDepth-1) + strings.Repeat("]", DefaultMaxDepth-1) + `}`, OpPing, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.doc))
			if tt.reason != ReasonNone {
				if !errors.Is(err, tt.reason) {
					t.Fatalf("err = %v, want %v", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if env.Op != tt.op || env.Target != tt.target {
				t.Fatalf("got %v/%v, want %v/%v", env.Op, env.Target, tt.op, tt.target)
			}
		})
	}
}

func TestParseEnvelopeSizeLimit(t *testing.T) {
	l := Limits{MaxDocumentSize: 100}
	if _, err := l.ParseEnvelope([]byte(docOfSize(100))); err != ReasonUnknownOp {
		t.Fatalf("100 bytes: %v", err)
	}
	if _, err := l.ParseEnvelope([]byte(docOfSize(101))); err != ReasonTooBig {
		t.Fatalf("101 bytes: %v", err)
	}
}

func TestIdentifyAccept(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{`{"op":1,"data":{"group":"g1","token":"secret"}}`, true},
		{`{"op":1,"data":{"token":"secret","group":"g1"}}`, true},
		{`{"op":1,"data":{"group":"g1","token":"se\u0063ret"}}`, true},
		{`{"op":1,"data":{"group":"g1","token":"wrong"}}`, false},
		{`{"op":1,"data":{"group":"","token":"secret"}}`, false},    // observed: empty group fails
		{`{"op":1,"data":{"group":"g1","token":""}}`, false},        // empty token fails
		{`{"op":1,"data":{"token":"secret"}}`, false},               // missing group
		{`{"op":1,"data":{"group":0,"token":"secret"}}`, false},     // 0 is falsy
		{`{"op":1,"data":{"group":5,"token":"secret"}}`, true},      // any truthy group passes
		{`{"op":1,"data":{"group":{},"token":"secret"}}`, true},     // {} is truthy
		{`{"op":1,"data":{"group":"g","token":["secret"]}}`, false}, // !== is strict
		{`{"op":1,"data":"secret"}`, false},
		{`{"op":1,"data":{"group":"g","token":"secret","token":"x"}}`, false}, // last duplicate wins
	}
	for _, tt := range tests {
		env, err := ParseEnvelope([]byte(tt.doc))
		if err != nil {
			t.Fatalf("%s: %v", tt.doc, err)
		}
		if got := env.Identify.Accept("secret"); got != tt.want {
			t.Errorf("%s: Accept = %v, want %v", tt.doc, got, tt.want)
		}
		if env.Identify.Accept("") {
			t.Errorf("%s: accepted with an empty configured token", tt.doc)
		}
	}
}

func TestValueSemantics(t *testing.T) {
	val := func(js string) Value {
		env, err := ParseEnvelope([]byte(`{"op":0,"intent":{"target":"GLOBAL","identifier":` + js + `}}`))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return env.Identifier
	}
	truthy := map[string]bool{
		`""`: false, `"0"`: true, `0`: false, `-0`: false, `0.0e5`: false, `1e-400`: false, `1e400`: true,
		`null`: false, `false`: false, `true`: true, `{}`: true, `[]`: true, `"\u0000"`: true,
	}
	for js, want := range truthy {
		if got := val(js).Truthy(); got != want {
			t.Errorf("Truthy(%s) = %v", js, got)
		}
	}
	if v := (Value{}); v.Truthy() || v.Kind() != KindUndefined {
		t.Error("undefined")
	}

	same := [][2]string{{`"a"`, `"\u0061"`}, {`0`, `-0`}, {`1`, `1.0`}, {`100`, `1e2`}, {`"\ud800"`, `"\uD800"`}, {`true`, `true`}}
	for _, p := range same {
		a, okA := val(p[0]).MapKey()
		b, okB := val(p[1]).MapKey()
		if !okA || !okB || a != b {
			t.Errorf("MapKey(%s) = %q, MapKey(%s) = %q: want equal", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{{`1`, `"1"`}, {`"\ud800"`, `"\ufffd"`}, {`1e400`, `-1e400`}, {`null`, `"null"`}, {`true`, `"true"`}}
	for _, p := range differ {
		a, _ := val(p[0]).MapKey()
		b, _ := val(p[1]).MapKey()
		if a == b {
			t.Errorf("MapKey(%s) == MapKey(%s) = %q", p[0], p[1], a)
		}
	}
	if _, ok := val(`{"a":1}`).MapKey(); ok {
		t.Error("objects have identity semantics and must not be addressable")
	}

	texts := map[string]string{
		`"plain"`: "plain", `"a\"b\\c\/d"`: `a"b\c/d`, `"\u00e9"`: "é", `"\uD83D\uDE00"`: "😀",
		`"\ud800x"`: "\xed\xa0\x80x", "\"\xe2\x82\"": "\ufffd",
	}
	for js, want := range texts {
		if got := string(val(js).Text()); got != want {
			t.Errorf("Text(%s) = %q, want %q", js, got, want)
		}
	}
	if val(`5`).Text() != nil {
		t.Error("Text of a number")
	}
	doc := []byte(`{"op":0,"intent":{"target":"DIRECT","identifier":"5cba6e20-5df7-44ad-819e-dfb7bbce494d"}}`)
	env, _ := ParseEnvelope(doc)
	if allocs := testing.AllocsPerRun(100, func() { env.Identifier.Text() }); allocs != 0 {
		t.Errorf("Text of a plain string allocates %v", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = ParseEnvelope(doc) }); allocs != 0 {
		t.Errorf("ParseEnvelope allocates %v", allocs)
	}
}

func TestReasonLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		l := r.Label()
		if seen[l] || strings.HasPrefix(l, "reason_") || l == "none" {
			t.Errorf("bad label %q", l)
		}
		seen[l] = true
		var err error = r
		if !errors.Is(err, r) {
			t.Errorf("%v is not itself", r)
		}
	}
	doc := []byte(`{"op":9}`)
	if allocs := testing.AllocsPerRun(100, func() {
		_, err := ParseEnvelope(doc)
		_ = err
	}); allocs != 0 {
		t.Errorf("returning a Reason allocates %v", allocs)
	}
}
