package wire

import "math"

// Decoder splits a raw TCP byte stream into JSON documents written back to
// back with no delimiter, which is how every Damon peer writes
// (socket.write(JSON.stringify(obj))). It is a strict superset of the
// reference's "JSON.parse each read chunk": documents may be coalesced in one
// read, split across reads at any byte, and separated by JSON whitespace.
//
// The scanner validates full JSON syntax byte by byte (the grammar JSON.parse
// accepts, minus the character decoding: bytes >= 0x80 inside strings are
// opaque, because the reference replaces invalid UTF-8 with U+FFFD instead of
// failing), tracking only a state, the nesting depth and one bit per level
// (object or array). It keeps no copy of a document that lies within one
// Feed call; only the unfinished tail of a call is buffered.
//
// # Size rule
//
// Every document may be at most Limits.MaxDocumentSize bytes, counted from its
// first byte to its last; whitespace between documents is not counted. The
// rule is checked as bytes arrive, so memory stays bounded: on byte
// MaxDocumentSize+1 of a document Feed returns ReasonTooBig, the partial
// document is discarded, never emitted, and the decoder is dead (every later
// Feed returns ReasonTooBig). The caller sends MsgMessageTooBig and closes.
// Documents completed earlier in the same Feed call have been emitted first.
//
// The reference instead checks each TCP read chunk (`chunk.length >
// max_bytes_message`), so the two differ when chunks and documents do not
// line up:
//   - one 40 KB document in one chunk: both answer MESSAGE_TOO_BIG;
//   - a document of exactly 32768 bytes: both accept it;
//   - two 20 KB documents coalesced into one 40 KB chunk: the reference
//     answers MESSAGE_TOO_BIG, we deliver both;
//   - one 40 KB document that arrives as two 20 KB chunks: the reference
//     drops both halves silently (each fails JSON.parse), we answer
//     MESSAGE_TOO_BIG;
//   - whitespace around a document: counted by the reference (it is in the
//     chunk), not by us.
//
// Malformed input (below) counts too: a malformed document or a run of
// garbage is a document for the size rule, so a peer that stays out of sync
// for more than MaxDocumentSize bytes is disconnected with MESSAGE_TOO_BIG,
// which is also what the reference does when such garbage arrives in one
// chunk.
//
// # Malformed input and resynchronisation
//
// The reference drops an unparsable chunk and keeps the connection. We report
// the first offending byte at once as a Frame with Bad set (ReasonParse, or
// ReasonTooDeep beyond Limits.MaxDepth) and then resynchronise, reporting
// nothing more for that document:
//   - inside an object or array (depth >= 1): the rest of the document is
//     skipped by counting '{' '[' against '}' ']' outside string literals
//     (string and escape state carried over from the point of the error),
//     until the brackets balance. This recovers cleanly from the usual
//     JavaScript-isms ({op:3}, NaN, undefined, 'quotes', raw newlines in
//     strings) and never mistakes a nested object for a new document. A
//     truncated document (unbalanced brackets, or an odd number of quotes)
//     keeps the skipper busy until the size rule closes the connection.
//   - at the top level (a byte that cannot start a value, or a broken
//     top-level scalar): everything up to the next '{' is skipped; that '{'
//     starts a new document.
//
// Top-level scalars and arrays are valid documents and are emitted (the
// envelope parser classifies them as ReasonNotObject). A top-level number
// ends at the first byte that cannot continue it, so "12" at the end of the
// input stays pending until more bytes arrive.
//
// Emitted output depends only on the byte sequence, never on how it was split
// into Feed calls (FuzzDecoder checks this).
//
// Measured (go test -bench Decoder -benchmem -count 5, shared 2-core dev VM
// under load average 5-12, so read the ranges as ±2x): 230-byte EVENTs
// back to back in 64 KiB reads 0.65-1.1 GB/s (about 0.2-0.35 µs per
// document), in 1000-byte reads 0.35-0.69 GB/s, one 32 KB string-heavy
// document 0.47-1.5 GB/s, all 0 allocs/op; encoding/json.Decoder splitting
// the same stream into RawMessages: 30-123 MB/s and 2 allocs per document.
//
// A Decoder is not safe for concurrent use; use one per connection.
type Decoder struct {
	lim       Limits
	state     scanState
	depth     int      // open containers of the current document
	objects   []uint64 // bit n set: nesting level n is an object, clear: an array
	inKey     bool     // the string being scanned is an object key
	hexLeft   uint8    // \uXXXX digits still expected in stHex
	lit       string   // rest of the literal being matched in stLiteral
	skipDepth int      // stSkip: brackets still open
	skipStr   bool     // stSkip: inside a string literal
	skipEsc   bool     // stSkip: the previous byte was a backslash in a string
	buf       []byte   // start of an unfinished document carried over from earlier calls
	docLen    int      // bytes of the current document seen in earlier calls
	err       error    // sticky: ReasonTooBig or the error an emit callback returned
}

// Frame is one unit the decoder hands to its emit callback.
type Frame struct {
	// Doc is a complete document when Bad is ReasonNone. For a malformed
	// document it holds the bytes seen so far, up to and including the
	// offending byte, for logging. Doc aliases the decoder's buffer or the
	// slice passed to Feed: it is valid only until the callback returns.
	Doc []byte
	// Bad is ReasonNone, ReasonParse or ReasonTooDeep.
	Bad Reason
}

type scanState uint8

const (
	stTop          scanState = iota // between documents
	stValue                         // a value must start (after ':' or an array ',')
	stArrayFirst                    // after '[': a value or ']'
	stObjectFirst                   // after '{': a key or '}'
	stKey                           // after ',' in an object: a key
	stColon                         // after a key: ':'
	stAfterValue                    // after a value in a container: ',' or the closer
	stString                        // inside a string
	stEscape                        // after '\' in a string
	stHex                           // inside \uXXXX
	stNumMinus                      // after '-'
	stNumZero                       // after a leading '0'
	stNumInt                        // integer digits
	stNumDot                        // after '.'
	stNumFrac                       // fraction digits
	stNumExp                        // after 'e'/'E'
	stNumExpSign                    // after the exponent sign
	stNumExpDigits                  // exponent digits
	stLiteral                       // inside true/false/null
	stSkip                          // resync inside a malformed document
	stGarbage                       // resync at top level: waiting for '{'
)

// retainBuf is the largest carry-over buffer kept between documents; bigger
// ones are dropped so that idle connections do not pin 32 KiB each.
const retainBuf = 4096

// maxDocumentCap keeps start+limit arithmetic far from overflow.
const maxDocumentCap = math.MaxInt32

// NewDecoder returns a decoder enforcing l (zero fields take defaults).
func NewDecoder(l Limits) *Decoder {
	l = l.withDefaults()
	l.MaxDocumentSize = min(l.MaxDocumentSize, maxDocumentCap)
	return &Decoder{lim: l, objects: make([]uint64, 1)} // grows with depth, 64 levels a word
}

// Limits returns the limits in force.
func (d *Decoder) Limits() Limits { return d.lim }

// Reset forgets all state, including a sticky error, keeping the limits.
func (d *Decoder) Reset() {
	*d = Decoder{lim: d.lim, objects: d.objects, buf: d.buf[:0]}
}

// Pending reports how many bytes of an unfinished document (valid so far, or
// being skipped) the decoder has seen.
func (d *Decoder) Pending() int { return d.docLen }

// Feed scans p and calls emit, in stream order, for every document that
// completes and for every malformed document detected. p is not retained.
//
// Feed returns ReasonTooBig when a document exceeds the size limit, or the
// first non-nil error emit returns; in both cases the rest of p is discarded
// and the decoder stays failed (Reset clears it).
func (d *Decoder) Feed(p []byte, emit func(Frame) error) error {
	if d.err != nil {
		return d.err
	}
	start := 0 // index in p of the current document's first byte (0 if it began earlier)
	lim := math.MaxInt
	if d.state != stTop {
		lim = d.lim.MaxDocumentSize - d.docLen
	}
	i := 0
	for i < len(p) {
		c := p[i]
		if i >= lim && !d.endsBefore(c) {
			d.fail(ReasonTooBig)
			return d.err
		}
		// Each case either consumes or re-examines bytes and continues, sets
		// bad, or breaks out having ended a value just before p[i].
		var bad Reason
		switch d.state {
		case stTop:
			if isSpace(c) {
				i++
				continue
			}
			start, lim, d.docLen = i, i+d.lim.MaxDocumentSize, 0
			d.state = stValue
			continue // the byte is examined again as a value's first byte

		case stValue, stArrayFirst:
			if isSpace(c) {
				i++
				continue
			}
			if c == ']' && d.state == stArrayFirst {
				d.depth--
				i++
				break
			}
			if bad = d.beginValue(c); bad != ReasonNone {
				break
			}
			i++
			continue
		case stObjectFirst, stKey:
			if isSpace(c) {
				i++
				continue
			}
			if c == '"' {
				d.inKey, d.state = true, stString
				i++
				continue
			}
			if c == '}' && d.state == stObjectFirst {
				d.depth--
				i++
				break
			}
			bad = ReasonParse
		case stColon:
			if c != ':' && !isSpace(c) {
				bad = ReasonParse
				break
			}
			if c == ':' {
				d.state = stValue
			}
			i++
			continue
		case stAfterValue:
			if isSpace(c) {
				i++
				continue
			}
			obj := d.inObject()
			if c == ',' {
				i++
				d.state = stValue
				if obj {
					d.state = stKey
					// Shortcut for the common `,"key"` with no space.
					if i < len(p) && i < lim && p[i] == '"' {
						d.inKey, d.state = true, stString
						i++
					}
				}
				continue
			}
			if c == '}' && obj || c == ']' && !obj {
				d.depth--
				i++
				break
			}
			bad = ReasonParse

		case stString:
			end := min(len(p), lim)
			j := i
			for j < end {
				if b := p[j]; b == '"' || b == '\\' || b < 0x20 {
					break
				}
				j++
			}
			i = j
			if j == end {
				continue // more string next call, or the size check at the loop top
			}
			if b := p[j]; b == '\\' {
				d.state = stEscape
				i++
				continue
			} else if b != '"' {
				bad = ReasonParse // raw control character
				break
			}
			i++
			if d.inKey {
				d.inKey, d.state = false, stColon
				// Shortcut for the common `"key":` with no space.
				if i < end && p[i] == ':' {
					d.state = stValue
					i++
				}
				continue
			}
		case stEscape:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.state = stString
			case 'u':
				d.state, d.hexLeft = stHex, 4
			default:
				bad = ReasonParse
			}
			if bad != ReasonNone {
				break
			}
			i++
			continue
		case stHex:
			if !isHex(c) {
				bad = ReasonParse
				break
			}
			i++
			if d.hexLeft--; d.hexLeft == 0 {
				d.state = stString
			}
			continue

		case stNumMinus:
			if !isDigit(c) {
				bad = ReasonParse
				break
			}
			d.state = stNumInt
			if c == '0' {
				d.state = stNumZero
			}
			i++
			continue
		case stNumZero, stNumInt, stNumFrac, stNumExpDigits:
			if isDigit(c) && d.state != stNumZero {
				end := min(len(p), lim)
				for i++; i < end && isDigit(p[i]); i++ {
				}
				continue
			}
			if (c == 'e' || c == 'E') && d.state != stNumExpDigits {
				d.state = stNumExp
				i++
				continue
			}
			if c == '.' && (d.state == stNumInt || d.state == stNumZero) {
				d.state = stNumDot
				i++
				continue
			}
			// The number ended just before c, which is examined again.
		case stNumDot, stNumExpSign:
			if !isDigit(c) {
				bad = ReasonParse
				break
			}
			if d.state == stNumDot {
				d.state = stNumFrac
			} else {
				d.state = stNumExpDigits
			}
			i++
			continue
		case stNumExp:
			if c == '+' || c == '-' {
				d.state = stNumExpSign
			} else if isDigit(c) {
				d.state = stNumExpDigits
			} else {
				bad = ReasonParse
				break
			}
			i++
			continue
		case stLiteral:
			if c != d.lit[0] {
				bad = ReasonParse
				break
			}
			i++
			if d.lit = d.lit[1:]; d.lit != "" {
				continue
			}

		case stSkip:
			i++
			if d.skipBracket(c) {
				d.state, d.docLen, lim = stTop, 0, math.MaxInt
			}
			continue
		case stGarbage:
			if c == '{' {
				d.state, d.docLen, lim = stTop, 0, math.MaxInt
				continue
			}
			i++
			continue
		}

		if bad != ReasonNone {
			next, err := d.malformed(p, start, i, bad, emit)
			if err != nil {
				return err
			}
			i = next
			if d.state == stTop {
				lim = math.MaxInt
			}
			continue
		}
		// A value (or a closing bracket) ended just before p[i].
		if d.depth > 0 {
			d.state = stAfterValue
			continue
		}
		if err := d.emitDoc(p[start:i], emit); err != nil {
			return err
		}
		lim = math.MaxInt
	}

	switch d.state {
	case stTop:
	case stSkip, stGarbage:
		d.docLen += len(p) - start
	default:
		d.buf = append(d.buf, p[start:]...)
		d.docLen = len(d.buf)
	}
	return nil
}

// beginValue handles the first byte of a value.
func (d *Decoder) beginValue(c byte) Reason {
	switch c {
	case '{', '[':
		if d.depth >= d.lim.MaxDepth {
			return ReasonTooDeep
		}
		w, bit := d.depth>>6, uint64(1)<<(d.depth&63)
		if w == len(d.objects) {
			d.objects = append(d.objects, 0)
		}
		if c == '{' {
			d.objects[w] |= bit
			d.state = stObjectFirst
		} else {
			d.objects[w] &^= bit
			d.state = stArrayFirst
		}
		d.depth++
	case '"':
		d.inKey, d.state = false, stString
	case '-':
		d.state = stNumMinus
	case '0':
		d.state = stNumZero
	case 't':
		d.state, d.lit = stLiteral, "rue"
	case 'f':
		d.state, d.lit = stLiteral, "alse"
	case 'n':
		d.state, d.lit = stLiteral, "ull"
	default:
		if c >= '1' && c <= '9' {
			d.state = stNumInt
			return ReasonNone
		}
		return ReasonParse
	}
	return ReasonNone
}

func (d *Decoder) inObject() bool {
	n := d.depth - 1
	return d.objects[n>>6]&(1<<(n&63)) != 0
}

// endsBefore reports whether c would end the current document without being
// part of it, so that a document of exactly MaxDocumentSize bytes followed by
// c is not mistaken for an oversized one. Only a top-level number (ended by
// any byte that cannot continue it) and a garbage run (ended by '{') end that
// way; every other document ends on its own last byte.
func (d *Decoder) endsBefore(c byte) bool {
	if d.state == stGarbage {
		return c == '{'
	}
	if d.depth != 0 {
		return false
	}
	switch d.state {
	case stNumZero:
		return c != '.' && c != 'e' && c != 'E'
	case stNumInt:
		return !isDigit(c) && c != '.' && c != 'e' && c != 'E'
	case stNumFrac:
		return !isDigit(c) && c != 'e' && c != 'E'
	case stNumExpDigits:
		return !isDigit(c)
	}
	return false
}

// skipBracket advances the resynchronising bracket counter by one byte and
// reports whether the malformed document has ended.
func (d *Decoder) skipBracket(c byte) bool {
	if d.skipStr {
		switch {
		case d.skipEsc:
			d.skipEsc = false
		case c == '\\':
			d.skipEsc = true
		case c == '"':
			d.skipStr = false
		}
		return false
	}
	switch c {
	case '"':
		d.skipStr = true
	case '{', '[':
		d.skipDepth++
	case '}', ']':
		d.skipDepth--
		return d.skipDepth == 0
	}
	return false
}

// malformed reports the current document as bad at p[i], switches to
// resynchronisation and returns the index where scanning resumes.
func (d *Decoder) malformed(p []byte, start, i int, why Reason, emit func(Frame) error) (int, error) {
	c := p[i]
	inString := d.state == stString || d.state == stEscape || d.state == stHex
	end, next := i+1, i
	if d.depth == 0 {
		if c == '{' {
			// The '{' starts the next document rather than belonging to
			// the broken top-level value.
			end = i
			d.state, d.docLen = stTop, 0
		} else {
			d.state, next = stGarbage, i+1
		}
	} else {
		// Re-examine c with the bracket counter: it may be the closer
		// that ends the document, or a quote.
		d.state, d.skipDepth, d.skipStr, d.skipEsc = stSkip, d.depth, inString, false
	}
	d.depth, d.inKey = 0, false

	doc := p[start:end]
	if len(d.buf) > 0 {
		d.buf = append(d.buf, doc...)
		doc = d.buf
	}
	err := emit(Frame{Doc: doc, Bad: why})
	d.releaseBuf()
	if err != nil {
		d.err = err
	}
	return next, err
}

func (d *Decoder) emitDoc(doc []byte, emit func(Frame) error) error {
	if len(d.buf) > 0 {
		d.buf = append(d.buf, doc...)
		doc = d.buf
	}
	d.state, d.docLen = stTop, 0
	err := emit(Frame{Doc: doc})
	d.releaseBuf()
	if err != nil {
		d.err = err
	}
	return err
}

func (d *Decoder) releaseBuf() {
	if cap(d.buf) > retainBuf {
		d.buf = nil
	} else {
		d.buf = d.buf[:0]
	}
}

func (d *Decoder) fail(r Reason) {
	d.err = r
	d.buf = nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
