package wire

import (
	"crypto/subtle"
	"math"
	"strconv"
)

// Envelope is what the router needs from one client document:
//
//	{"id"?, "op", "event"?, "data"?, "intent"?: {"target", "identifier"?}}
//
// Values alias the parsed document, so an Envelope is valid only as long as
// the document bytes are (for the TCP decoder: until the emit callback
// returns). Copy what must outlive it.
type Envelope struct {
	Op Op
	// ID is the top-level "id" (KindUndefined if absent). The router never
	// reads it; it is here for logging and correlation.
	ID Value
	// Target and Identifier come from intent for EVENT and REPLY.
	Target     Target
	Identifier Value
	// Identify holds data.token and data.group of an IDENTIFY.
	Identify Identify

	doc    []byte
	limits Limits
}

// Identify is the payload of an IDENTIFY. Token and Group are KindUndefined
// when absent, or when data is not an object (the reference reads
// `data.token` of a string or array as undefined).
type Identify struct {
	Token, Group Value
}

// Accept applies the reference's check: token and group both truthy
// (`!data.token || !data.group` fails, so "" and 0 fail), and token a string
// equal to the configured token (`!==`, so the number 123 never equals "123").
// An empty configured token therefore rejects everyone, as in the reference.
// Unlike the reference, the comparison is constant-time.
func (id Identify) Accept(configuredToken string) bool {
	if !id.Token.Truthy() || !id.Group.Truthy() || id.Token.kind != KindString {
		return false
	}
	var buf [64]byte
	tok := id.Token.appendText(buf[:0])
	return subtle.ConstantTimeCompare(tok, []byte(configuredToken)) == 1
}

// ParseEnvelope parses one document (a TCP decoder frame or a WebSocket text
// message) with the default Limits. See Limits.ParseEnvelope.
func ParseEnvelope(doc []byte) (Envelope, error) {
	return Limits{}.ParseEnvelope(doc)
}

// ParseEnvelope validates doc as JSON.parse would (plus the depth and size
// limits) and classifies it the way the reference's Router.onMessage,
// Router.forward and Client.identify do. A non-nil error is always a Reason
// and means "drop silently" except for ReasonTooBig:
//
//	ReasonTooBig         len(doc) > MaxDocumentSize (WebSocket path; the
//	                     TCP decoder never emits such documents)
//	ReasonParse          not JSON
//	ReasonTooDeep        nested deeper than MaxDepth
//	ReasonNotObject      JSON, but not an object
//	ReasonUnknownOp      op missing, not a number, or not 0..5
//	ReasonNoIntent       EVENT/REPLY with intent missing or null
//	ReasonBadTarget      EVENT/REPLY whose intent.target is not exactly
//	                     "GLOBAL", "GROUP" or "DIRECT"
//	ReasonIdentifyNoData IDENTIFY with data missing or null (no reply)
//
// On success Op is set; for EVENT/REPLY Target and Identifier too; for
// IDENTIFY Identify (check it with Identify.Accept). OpDisconnect from a
// client is returned as a success: the reference ignores it, and so should
// the caller. Keys are matched after decoding escapes, and a duplicated key
// takes its last value, both as in JSON.parse.
func (l Limits) ParseEnvelope(doc []byte) (Envelope, error) {
	l = l.withDefaults()
	if len(doc) > l.MaxDocumentSize {
		return Envelope{}, ReasonTooBig
	}
	p := parser{doc: doc, maxDepth: l.MaxDepth}
	p.skipSpace()
	if p.peek() != '{' {
		if _, r := p.document(); r != ReasonNone {
			return Envelope{}, r
		}
		return Envelope{}, ReasonNotObject
	}
	var top [4]Value // op, id, intent, data
	if r := p.fields([]string{"op", "id", "intent", "data"}, top[:]); r != ReasonNone {
		return Envelope{}, r
	}
	if p.skipSpace(); p.pos != len(doc) {
		return Envelope{}, ReasonParse
	}
	env := Envelope{ID: top[1], doc: doc, limits: l}
	op, ok := top[0].opcode()
	if !ok {
		return Envelope{}, ReasonUnknownOp
	}
	env.Op = op

	switch op {
	case OpEvent, OpReply:
		intent := top[2]
		if intent.kind == KindUndefined || intent.kind == KindNull {
			return Envelope{}, ReasonNoIntent // TypeError in the reference
		}
		var in [2]Value // target, identifier
		if intent.kind == KindObject {
			sub := parser{doc: intent.raw, maxDepth: l.MaxDepth}
			// Cannot fail: the whole document was validated above.
			if r := sub.fields([]string{"target", "identifier"}, in[:]); r != ReasonNone {
				return Envelope{}, r
			}
		}
		switch {
		case in[0].isString("GLOBAL"):
			env.Target = TargetGlobal
		case in[0].isString("GROUP"):
			env.Target = TargetGroup
		case in[0].isString("DIRECT"):
			env.Target = TargetDirect
		default:
			return Envelope{}, ReasonBadTarget
		}
		env.Identifier = in[1]
	case OpIdentify:
		data := top[3]
		if data.kind == KindUndefined || data.kind == KindNull {
			return Envelope{}, ReasonIdentifyNoData
		}
		if data.kind == KindObject {
			var tg [2]Value
			sub := parser{doc: data.raw, maxDepth: l.MaxDepth}
			// Cannot fail: the whole document was validated above.
			if r := sub.fields([]string{"token", "group"}, tg[:]); r != ReasonNone {
				return Envelope{}, r
			}
			env.Identify = Identify{Token: tg[0], Group: tg[1]}
		}
	}
	return env, nil
}

// Kind is the JSON type of a Value; KindUndefined means the key was absent.
type Kind uint8

const (
	KindUndefined Kind = iota
	KindNull
	KindFalse
	KindTrue
	KindNumber
	KindString
	KindObject
	KindArray
)

// Value is one JSON value inside a parsed document, kept as its raw text.
type Value struct {
	kind  Kind
	plain bool   // string whose raw content is its decoded text
	raw   []byte // the value's JSON text, quotes included for strings
}

// Kind returns the value's JSON type.
func (v Value) Kind() Kind { return v.kind }

// Raw returns the value's JSON text as the sender wrote it.
func (v Value) Raw() []byte { return v.raw }

// Text returns a string value's decoded text in WTF-8 (lone surrogates from
// \uD800-style escapes keep a 3-byte form, so distinct JavaScript strings
// stay distinct), or nil for other kinds. It aliases the document unless the
// string contains escapes or invalid UTF-8 (replaced by U+FFFD as Node does).
func (v Value) Text() []byte {
	if v.kind != KindString {
		return nil
	}
	if v.plain {
		return v.raw[1 : len(v.raw)-1]
	}
	return v.appendText(nil)
}

func (v Value) appendText(dst []byte) []byte {
	if v.plain {
		return append(dst, v.raw[1:len(v.raw)-1]...)
	}
	p := parser{doc: v.raw}
	s, _ := p.scanString()
	return appendStringText(dst, s)
}

// Float returns a number value as JavaScript sees it (1e400 is +Inf).
func (v Value) Float() float64 {
	if v.kind != KindNumber {
		return 0
	}
	return parseNumber(v.raw)
}

// Truthy is JavaScript's truthiness: false for undefined, null, false, 0,
// -0 and "" (1e-400 is 0, so falsy too); true for everything else, including
// empty objects and arrays.
func (v Value) Truthy() bool {
	switch v.kind {
	case KindUndefined, KindNull, KindFalse:
		return false
	case KindNumber:
		return v.Float() != 0
	case KindString:
		return len(v.raw) > 2 // any content decodes to at least one character
	}
	return true
}

// MapKey returns a key under which the value can be stored in a Go map so
// that two values get the same key exactly when a JavaScript Map would treat
// them as the same key (SameValueZero): strings by decoded text, numbers by
// value (0 and -0 alike), and the literals. Objects and arrays have identity
// semantics in JavaScript, so a freshly parsed one never matches anything:
// ok is false. Use it to register an IDENTIFY group and to look up a GROUP
// intent's identifier, which the reference keys by the raw JS value.
func (v Value) MapKey() (key string, ok bool) {
	switch v.kind {
	case KindString:
		return "s" + string(v.Text()), true
	case KindNumber:
		f := v.Float()
		if f == 0 {
			return "n0", true // SameValueZero: -0 is 0
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64), true // keeps +Inf and -Inf apart
	case KindNull:
		return "null", true
	case KindTrue:
		return "true", true
	case KindFalse:
		return "false", true
	}
	return "", false
}

func (v Value) isString(s string) bool {
	if v.kind != KindString {
		return false
	}
	if v.plain {
		return string(v.raw[1:len(v.raw)-1]) == s
	}
	var buf [64]byte
	return string(v.appendText(buf[:0])) == s
}

// opcode applies the reference's `switch (message.op)`: strict equality with
// the numbers 0..5, after JSON.parse turned the literal into a double.
func (v Value) opcode() (Op, bool) {
	if v.kind != KindNumber {
		return 0, false
	}
	if len(v.raw) == 1 && v.raw[0] >= '0' && v.raw[0] <= '5' {
		return Op(v.raw[0] - '0'), true // the common case, without ParseFloat
	}
	f := v.Float()
	if f >= 0 && f <= 5 && f == math.Trunc(f) {
		return Op(f), true
	}
	return 0, false
}

// String describes the value for logs and test failures.
func (v Value) String() string {
	if v.kind == KindUndefined {
		return "undefined"
	}
	return strconv.Quote(string(v.raw))
}
