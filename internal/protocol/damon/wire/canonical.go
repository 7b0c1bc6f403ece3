package wire

import (
	"bytes"
	"slices"
)

// The reference never forwards the bytes it received: it JSON.parse()s the
// chunk, publishes JSON.stringify(message) to Redis, JSON.parse()s that in
// every worker and writes JSON.stringify(message) to each recipient (after
// setting message.id for an EVENT). What a recipient gets is therefore
// JSON.stringify(JSON.parse(doc)), and this file reproduces that byte for
// byte (checked against Node in node_test.go):
//
//   - whitespace outside strings disappears;
//   - numbers are re-printed from their double value: 1e3 → 1000, 1.0 → 1,
//     -0 → 0, 1E+2 → 100, 1e21 → 1e+21, 0.0000001 → 1e-7, 1e400 → null,
//     12345678901234567890 → 12345678901234567000;
//   - strings are decoded and re-encoded: \u0041 → A, \/ → /, é stays
//     literal, control characters become \b \f \n \r \t or lowercase \u00xx,
//     lone surrogates become lowercase \udxxx, invalid UTF-8 becomes U+FFFD
//     (one per WHATWG "maximal subpart");
//   - object keys are compared after decoding; a duplicated key keeps the
//     position of its first occurrence and the value of its last;
//   - keys that are array indices ("0" … "4294967294", no leading zeros)
//     come first in ascending numeric order, then the other keys in
//     insertion order (JavaScript's own-property order).
//
// The one deliberate difference is MaxDepth (ReasonTooDeep); the reference
// has no depth limit.

// idPlaceholder is the 36-character value a template carries until WithID
// patches it.
const idPlaceholder = `"00000000-0000-4000-8000-000000000000"`

// IDTemplate is a forwarded EVENT encoded once, with a slot for the id. Each
// recipient's copy costs one copy of the bytes plus a 36-byte patch.
// The zero IDTemplate is not usable; build one with NewIDTemplate.
type IDTemplate struct {
	msg  []byte // JSON.stringify output with idPlaceholder as the id value
	idAt int    // offset of the 36 uuid characters in msg
}

// NewIDTemplate builds the template for forwarding the EVENT doc, with the
// default Limits. See Limits.NewIDTemplate.
func NewIDTemplate(doc []byte) (IDTemplate, error) {
	return Limits{}.NewIDTemplate(doc)
}

// NewIDTemplate encodes doc as the reference's Client.send does for an
// EVENT: `message.id = uuidv4()` then JSON.stringify. An existing "id" keeps
// its position (its value, of any type, is replaced); a missing one is
// appended as the last key. doc must be a JSON object (ReasonNotObject
// otherwise); errors are Reasons as for ParseEnvelope.
//
// Cost for a 230-byte EVENT (BenchmarkNewIDTemplate, loaded dev VM):
// 0.7-1.3 µs and 2 allocations (the template bytes and the member stack),
// once per forwarded message. The output can be longer than doc: invalid
// UTF-8 becomes 3-byte U+FFFD and 1e20 prints as 21 digits, so a recipient
// may get more than MaxDocumentSize bytes, exactly as from the reference.
func (l Limits) NewIDTemplate(doc []byte) (IDTemplate, error) {
	l = l.withDefaults()
	if len(doc) > l.MaxDocumentSize {
		return IDTemplate{}, ReasonTooBig
	}
	var spans [16]memberSpan
	c := canonicalizer{
		p:     parser{doc: doc, maxDepth: l.MaxDepth},
		out:   make([]byte, 0, len(doc)+len(`,"id":`)+len(idPlaceholder)),
		spans: spans[:0],
	}
	c.p.skipSpace()
	if c.p.peek() != '{' {
		if _, r := c.p.document(); r != ReasonNone {
			return IDTemplate{}, r
		}
		return IDTemplate{}, ReasonNotObject
	}
	if r := c.object(true); r != ReasonNone {
		return IDTemplate{}, r
	}
	if c.p.skipSpace(); c.p.pos != len(doc) {
		return IDTemplate{}, ReasonParse
	}
	return IDTemplate{msg: c.out, idAt: c.idAt}, nil
}

// WithID appends the message with id as its "id" value to dst and returns
// the extended slice. With a dst of sufficient capacity it does not allocate:
// 9-20 ns per recipient for a 230-byte EVENT (BenchmarkWithIDReusedBuffer).
func (t IDTemplate) WithID(dst []byte, id UUID) []byte {
	n := len(dst)
	dst = append(dst, t.msg...)
	copy(dst[n+t.idAt:n+t.idAt+len(id)], id[:])
	return dst
}

// Len is the length of every copy WithID produces.
func (t IDTemplate) Len() int { return len(t.msg) }

// AppendCanonical appends JSON.stringify(JSON.parse(doc)) to dst with the
// default Limits: what the reference forwards for a REPLY (id preserved), or
// for an EVENT when ids are preserved on purpose.
func AppendCanonical(dst, doc []byte) ([]byte, error) {
	return Limits{}.AppendCanonical(dst, doc)
}

// AppendCanonical appends JSON.stringify(JSON.parse(doc)) to dst. On error
// dst is returned unchanged.
func (l Limits) AppendCanonical(dst, doc []byte) ([]byte, error) {
	l = l.withDefaults()
	if len(doc) > l.MaxDocumentSize {
		return dst, ReasonTooBig
	}
	var spans [16]memberSpan
	c := canonicalizer{p: parser{doc: doc, maxDepth: l.MaxDepth}, out: dst, spans: spans[:0]}
	if r := c.value(); r != ReasonNone {
		return dst, r
	}
	if c.p.skipSpace(); c.p.pos != len(doc) {
		return dst, ReasonParse
	}
	return c.out, nil
}

// IDTemplate builds the per-recipient template of this EVENT (see
// Limits.NewIDTemplate), with the limits it was parsed with.
func (e *Envelope) IDTemplate() (IDTemplate, error) {
	return e.limits.NewIDTemplate(e.doc)
}

// AppendCanonical appends the forwarded form of this document (see
// Limits.AppendCanonical), with the limits it was parsed with.
func (e *Envelope) AppendCanonical(dst []byte) ([]byte, error) {
	return e.limits.AppendCanonical(dst, e.doc)
}

// memberSpan locates one object member in canonicalizer.out: the encoded key
// at [start, colon), ':' at colon, the encoded value at [colon+1, end).
type memberSpan struct{ start, colon, end int }

// canonicalizer writes JSON.stringify(JSON.parse(doc)) while validating.
// Members are written in input order and reordered afterwards only when an
// object has duplicate keys or out-of-order array-index keys, which real
// traffic almost never has.
type canonicalizer struct {
	p     parser
	out   []byte
	spans []memberSpan // members of the objects being written, innermost last
	idAt  int

	// scratch for reorder
	perm, from, order []int
	tmp               []byte
}

func (c *canonicalizer) value() Reason {
	p := &c.p
	p.skipSpace()
	switch p.peek() {
	case '{':
		return c.object(false)
	case '[':
		return c.array()
	case '"':
		s, r := p.scanString()
		if r != ReasonNone {
			return r
		}
		c.out = appendStringJSON(c.out, s)
	case 't', 'f', 'n':
		raw, _, r := p.literal()
		if r != ReasonNone {
			return r
		}
		c.out = append(c.out, raw...)
	default:
		raw, r := p.scanNumber()
		if r != ReasonNone {
			return r
		}
		c.out = appendNumberJSON(c.out, raw)
	}
	return ReasonNone
}

func (c *canonicalizer) array() Reason {
	p := &c.p
	if r := p.enter(); r != ReasonNone {
		return r
	}
	c.out = append(c.out, '[')
	p.skipSpace()
	if p.peek() != ']' {
		for {
			if r := c.value(); r != ReasonNone {
				return r
			}
			p.skipSpace()
			if p.peek() == ']' {
				break
			}
			if p.peek() != ',' {
				return ReasonParse
			}
			p.pos++
			c.out = append(c.out, ',')
		}
	}
	p.pos++
	p.depth--
	c.out = append(c.out, ']')
	return ReasonNone
}

// object writes the object at pos. withID makes it the top level of an
// EVENT template: the value of an "id" member is replaced by idPlaceholder
// and, without one, a final "id" member is added, which is exactly what the
// reference's `message.id = uuidv4()` does (a duplicated "id" then keeps its
// first position and the last value, the placeholder).
func (c *canonicalizer) object(withID bool) Reason {
	p := &c.p
	if r := p.enter(); r != ReasonNone {
		return r
	}
	objStart, base := len(c.out), len(c.spans)
	lastID := -1 // index in c.spans[base:] of the last "id" member
	c.out = append(c.out, '{')
	p.skipSpace()
	if p.peek() != '}' {
		for {
			if p.peek() != '"' {
				return ReasonParse
			}
			key, r := p.scanString()
			if r != ReasonNone {
				return r
			}
			start := len(c.out)
			c.out = appendStringJSON(c.out, key)
			colon := len(c.out)
			c.out = append(c.out, ':')
			if r := p.expect(':'); r != ReasonNone {
				return r
			}
			if withID && string(c.out[start:colon]) == `"id"` {
				if r := p.skipValue(); r != ReasonNone {
					return r
				}
				c.out = append(c.out, idPlaceholder...)
				lastID = len(c.spans) - base
			} else if r := c.value(); r != ReasonNone {
				return r
			}
			c.spans = append(c.spans, memberSpan{start, colon, len(c.out)})
			p.skipSpace()
			if p.peek() == '}' {
				break
			}
			if p.peek() != ',' {
				return ReasonParse
			}
			p.pos++
			p.skipSpace()
			c.out = append(c.out, ',')
		}
	}
	p.pos++
	p.depth--
	if withID && lastID < 0 {
		if len(c.spans) > base {
			c.out = append(c.out, ',')
		}
		start := len(c.out)
		c.out = append(c.out, `"id":`...)
		c.out = append(c.out, idPlaceholder...)
		lastID = len(c.spans) - base
		c.spans = append(c.spans, memberSpan{start, start + len(`"id"`), len(c.out)})
	}
	c.out = append(c.out, '}')
	c.finishObject(objStart, c.spans[base:], lastID)
	c.spans = c.spans[:base]
	return ReasonNone
}

func (c *canonicalizer) key(m memberSpan) []byte { return c.out[m.start:m.colon] }

// finishObject applies JavaScript's property order to the object just
// written at out[objStart:], whose members are ms, and records where the id
// placeholder ended up: it is the value of member synth (-1: none).
func (c *canonicalizer) finishObject(objStart int, ms []memberSpan, synth int) {
	if !c.needsReorder(ms) {
		if synth >= 0 {
			c.idAt = ms[synth].colon + 2 // past `:"`
		}
		return
	}
	n := len(ms)
	// Group equal keys; a stable sort keeps each group in input order, so
	// its first element is where the key stays and its last the value.
	c.perm = c.perm[:0]
	for i := range n {
		c.perm = append(c.perm, i)
	}
	slices.SortStableFunc(c.perm, func(a, b int) int { return bytes.Compare(c.key(ms[a]), c.key(ms[b])) })
	c.from = slices.Grow(c.from[:0], n)[:n]
	for i := range c.from {
		c.from[i] = -1
	}
	for g := 0; g < n; {
		h := g
		for h+1 < n && bytes.Equal(c.key(ms[c.perm[h+1]]), c.key(ms[c.perm[g]])) {
			h++
		}
		c.from[c.perm[g]] = c.perm[h]
		g = h + 1
	}
	// Array-index keys first, ascending; then the rest in insertion order.
	c.order = c.order[:0]
	for i := range n {
		if c.from[i] >= 0 && isIndexKey(c.key(ms[i])) {
			c.order = append(c.order, i)
		}
	}
	slices.SortFunc(c.order, func(a, b int) int { return compareIndexKeys(c.key(ms[a]), c.key(ms[b])) })
	for i := range n {
		if c.from[i] >= 0 && !isIndexKey(c.key(ms[i])) {
			c.order = append(c.order, i)
		}
	}
	tmp := append(c.tmp[:0], '{')
	for k, i := range c.order {
		if k > 0 {
			tmp = append(tmp, ',')
		}
		m, v := ms[i], ms[c.from[i]]
		tmp = append(tmp, c.out[m.start:m.colon+1]...)
		if c.from[i] == synth {
			c.idAt = objStart + len(tmp) + 1
		}
		tmp = append(tmp, c.out[v.colon+1:v.end]...)
	}
	tmp = append(tmp, '}')
	c.out = append(c.out[:objStart], tmp...)
	c.tmp = tmp
}

// needsReorder reports whether ms has a duplicate key or an array-index key
// that is not already in its final place.
func (c *canonicalizer) needsReorder(ms []memberSpan) bool {
	var prevIndex []byte
	sawName := false
	for _, m := range ms {
		k := c.key(m)
		if !isIndexKey(k) {
			sawName = true
			continue
		}
		if sawName || prevIndex != nil && compareIndexKeys(prevIndex, k) >= 0 {
			return true
		}
		prevIndex = k
	}
	if len(ms) <= 16 {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				if bytes.Equal(c.key(ms[i]), c.key(ms[j])) {
					return true
				}
			}
		}
		return false
	}
	c.perm = c.perm[:0]
	for i := range ms {
		c.perm = append(c.perm, i)
	}
	slices.SortFunc(c.perm, func(a, b int) int { return bytes.Compare(c.key(ms[a]), c.key(ms[b])) })
	for i := 1; i < len(c.perm); i++ {
		if bytes.Equal(c.key(ms[c.perm[i-1]]), c.key(ms[c.perm[i]])) {
			return true
		}
	}
	return false
}

// isIndexKey reports whether an encoded key ("..." with quotes) is an array
// index: the canonical decimal form of an integer 0 ≤ i ≤ 2^32-2. V8 orders
// such keys first on every object; larger integers such as "4294967295"
// are ordinary string keys (checked against Node).
func isIndexKey(k []byte) bool {
	d := k[1 : len(k)-1]
	if len(d) == 0 || len(d) > 10 || len(d) > 1 && d[0] == '0' {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(d) < 10 || string(d) <= "4294967294"
}

// compareIndexKeys orders two index keys numerically: no leading zeros, so
// shorter is smaller and equal lengths compare bytewise.
func compareIndexKeys(a, b []byte) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}
