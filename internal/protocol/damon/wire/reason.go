package wire

import "strconv"

// Op is a Damon opcode. The reference compares the parsed "op" with ===
// against these numbers, so only JSON numbers whose IEEE-754 value equals one
// of them count ("op":1.0 and "op":-0 do, "op":"1" does not).
type Op uint8

const (
	OpEvent      Op = 0 // forwarded by intent, id regenerated per recipient
	OpIdentify   Op = 1 // data:{group,token} → data:{id,ping}
	OpDisconnect Op = 2 // server → client only; the reference ignores it from clients
	OpPing       Op = 3
	OpPong       Op = 4
	OpReply      Op = 5 // forwarded by intent, id preserved
)

func (o Op) String() string {
	switch o {
	case OpEvent:
		return "EVENT"
	case OpIdentify:
		return "IDENTIFY"
	case OpDisconnect:
		return "DISCONNECT"
	case OpPing:
		return "PING"
	case OpPong:
		return "PONG"
	case OpReply:
		return "REPLY"
	}
	return "OP(" + strconv.Itoa(int(o)) + ")"
}

// Target is intent.target of an EVENT or REPLY. The reference matches it with
// a case-sensitive switch, so "global" is not GLOBAL.
type Target uint8

const (
	TargetNone Target = iota // not an EVENT/REPLY
	TargetGlobal
	TargetGroup
	TargetDirect
)

func (t Target) String() string {
	switch t {
	case TargetGlobal:
		return "GLOBAL"
	case TargetGroup:
		return "GROUP"
	case TargetDirect:
		return "DIRECT"
	}
	return "NONE"
}

// Reason says why a document was not acted upon. It is the error type of
// this package: every error returned by the decoder and the envelope parser
// is a Reason, so callers can count drops by Label without allocating
// (converting a one-byte value to an interface does not allocate) and can
// test with errors.Is(err, wire.ReasonUnknownOp).
//
// Apart from ReasonTooBig, a Reason is a silent drop: the reference logs it
// and keeps the connection.
type Reason uint8

const (
	ReasonNone Reason = iota

	// ReasonParse: not JSON as JSON.parse accepts it. The reference logs
	// "Client message parsing error".
	ReasonParse
	// ReasonTooDeep: valid JSON nested deeper than Limits.MaxDepth.
	// Deliberate difference: the reference has no depth bound (only its
	// 32 KiB chunk limit bounds nesting to ~16K levels).
	ReasonTooDeep
	// ReasonTooBig: a document longer than Limits.MaxDocumentSize. Fatal:
	// send MsgMessageTooBig and close.
	ReasonTooBig
	// ReasonNotObject: valid JSON whose top level is not an object. The
	// reference ignores arrays and scalars (op is undefined); top-level null
	// throws a TypeError it logs as a parsing error.
	ReasonNotObject
	// ReasonUnknownOp: "op" missing, not a number, or not an opcode.
	ReasonUnknownOp
	// ReasonNoIntent: EVENT/REPLY whose "intent" is missing or null (a
	// TypeError in the reference, logged as a parsing error).
	ReasonNoIntent
	// ReasonBadTarget: EVENT/REPLY whose intent.target is not exactly
	// "GLOBAL", "GROUP" or "DIRECT" (also: intent not an object).
	ReasonBadTarget
	// ReasonIdentifyNoData: IDENTIFY whose "data" is missing or null. The
	// reference throws a TypeError and sends no reply at all (observed).
	ReasonIdentifyNoData
	// ReasonNoRecipient: routing found nobody (unknown DIRECT id, empty
	// group). Not produced by this package; defined so the server's drop
	// counter uses one label set.
	ReasonNoRecipient
)

// Label is the metric label value, e.g. damon_dropped_total{reason="parse"}.
func (r Reason) Label() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonParse:
		return "parse"
	case ReasonTooDeep:
		return "too_deep"
	case ReasonTooBig:
		return "too_big"
	case ReasonNotObject:
		return "not_object"
	case ReasonUnknownOp:
		return "unknown_op"
	case ReasonNoIntent:
		return "no_intent"
	case ReasonBadTarget:
		return "bad_target"
	case ReasonIdentifyNoData:
		return "identify_no_data"
	case ReasonNoRecipient:
		return "no_recipient"
	}
	return "reason_" + strconv.Itoa(int(r))
}

func (r Reason) Error() string { return "damon: " + r.Label() }

// Reasons lists every Reason except ReasonNone, for pre-registering metric
// label values.
func Reasons() []Reason {
	return []Reason{ReasonParse, ReasonTooDeep, ReasonTooBig, ReasonNotObject, ReasonUnknownOp,
		ReasonNoIntent, ReasonBadTarget, ReasonIdentifyNoData, ReasonNoRecipient}
}

const (
	// DefaultMaxDocumentSize is the reference's max_bytes_message.
	DefaultMaxDocumentSize = 32768
	// DefaultMaxDepth bounds {}/[] nesting. Real Damon payloads are a few
	// levels deep; the bound keeps the recursive parsers' stacks small.
	DefaultMaxDepth = 512
)

// Limits configures the decoder and the parsers. Zero fields take defaults.
type Limits struct {
	// MaxDocumentSize is the largest accepted document in bytes
	// (inclusive, like the reference's `length > max_bytes_message`).
	MaxDocumentSize int
	// MaxDepth is the deepest accepted nesting of objects and arrays;
	// {"a":[1]} has depth 2.
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDocumentSize <= 0 {
		l.MaxDocumentSize = DefaultMaxDocumentSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}
