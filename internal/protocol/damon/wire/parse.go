package wire

// parser is a validating recursive-descent reader over one complete document
// with JSON.parse's grammar. The envelope parser and the canonical encoder
// are built on it. Recursion is bounded by maxDepth.
type parser struct {
	doc      []byte
	pos      int
	depth    int
	maxDepth int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.doc) && isSpace(p.doc[p.pos]) {
		p.pos++
	}
}

// peek returns the byte at pos, or 0 at the end (0 is never valid there).
func (p *parser) peek() byte {
	if p.pos < len(p.doc) {
		return p.doc[p.pos]
	}
	return 0
}

// expect consumes optional whitespace, then c.
func (p *parser) expect(c byte) Reason {
	p.skipSpace()
	if p.peek() != c {
		return ReasonParse
	}
	p.pos++
	return ReasonNone
}

func (p *parser) enter() Reason {
	if p.depth >= p.maxDepth {
		return ReasonTooDeep
	}
	p.depth++
	p.pos++
	return ReasonNone
}

// scanString reads the string literal at pos (which holds '"').
func (p *parser) scanString() (jsonString, Reason) {
	doc := p.doc
	i := p.pos + 1
	var s jsonString
	for {
		// Fast path over ordinary ASCII.
		for i < len(doc) {
			if c := doc[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				break
			}
			i++
		}
		if i >= len(doc) {
			return s, ReasonParse
		}
		switch c := doc[i]; {
		case c == '"':
			s.raw = doc[p.pos+1 : i]
			p.pos = i + 1
			return s, ReasonNone
		case c == '\\':
			s.escaped = true
			if i+1 >= len(doc) {
				return s, ReasonParse
			}
			switch doc[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(doc) || !isHex(doc[i+2]) || !isHex(doc[i+3]) || !isHex(doc[i+4]) || !isHex(doc[i+5]) {
					return s, ReasonParse
				}
				i += 6
			default:
				return s, ReasonParse
			}
		case c >= 0x80:
			s.high = true
			i++
		default:
			return s, ReasonParse // raw control character
		}
	}
}

// scanNumber reads the number literal at pos.
func (p *parser) scanNumber() ([]byte, Reason) {
	doc, i := p.doc, p.pos
	digits := func() int {
		n := 0
		for i < len(doc) && isDigit(doc[i]) {
			i++
			n++
		}
		return n
	}
	if i < len(doc) && doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case digits() == 0:
		return nil, ReasonParse
	}
	if i < len(doc) && doc[i] == '.' {
		i++
		if digits() == 0 {
			return nil, ReasonParse
		}
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, ReasonParse
		}
	}
	raw := doc[p.pos:i]
	p.pos = i
	return raw, ReasonNone
}

// literal reads true, false or null at pos.
func (p *parser) literal() ([]byte, Kind, Reason) {
	var lit string
	var k Kind
	switch p.peek() {
	case 't':
		lit, k = "true", KindTrue
	case 'f':
		lit, k = "false", KindFalse
	default:
		lit, k = "null", KindNull
	}
	end := p.pos + len(lit)
	if end > len(p.doc) || string(p.doc[p.pos:end]) != lit {
		return nil, 0, ReasonParse
	}
	raw := p.doc[p.pos:end]
	p.pos = end
	return raw, k, ReasonNone
}

// value reads any value at pos (after optional whitespace) and returns it
// as a Value, validating nested content.
func (p *parser) value() (Value, Reason) {
	p.skipSpace()
	start := p.pos
	switch c := p.peek(); c {
	case '{', '[':
		var r Reason
		if c == '{' {
			r = p.skipObject()
		} else {
			r = p.skipArray()
		}
		k := KindObject
		if c == '[' {
			k = KindArray
		}
		return Value{kind: k, raw: p.doc[start:p.pos]}, r
	case '"':
		s, r := p.scanString()
		return Value{kind: KindString, raw: p.doc[start:p.pos], plain: r == ReasonNone && s.plain()}, r
	case 't', 'f', 'n':
		raw, k, r := p.literal()
		return Value{kind: k, raw: raw}, r
	default:
		raw, r := p.scanNumber()
		return Value{kind: KindNumber, raw: raw}, r
	}
}

func (p *parser) skipValue() Reason {
	_, r := p.value()
	return r
}

func (p *parser) skipObject() Reason {
	return p.fields(nil, nil)
}

func (p *parser) skipArray() Reason {
	if r := p.enter(); r != ReasonNone {
		return r
	}
	p.skipSpace()
	if p.peek() == ']' {
		p.pos++
		p.depth--
		return ReasonNone
	}
	for {
		if r := p.skipValue(); r != ReasonNone {
			return r
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return ReasonNone
		default:
			return ReasonParse
		}
	}
}

// fields reads the object at pos. For each member whose decoded key equals
// keys[i] it stores the value in out[i]; a later duplicate overwrites an
// earlier one, as JSON.parse does. Other members are validated and skipped.
func (p *parser) fields(keys []string, out []Value) Reason {
	if r := p.enter(); r != ReasonNone {
		return r
	}
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		p.depth--
		return ReasonNone
	}
	for {
		if p.peek() != '"' {
			return ReasonParse
		}
		key, r := p.scanString()
		if r != ReasonNone {
			return r
		}
		if r := p.expect(':'); r != ReasonNone {
			return r
		}
		want := -1
		for i, k := range keys {
			if keyEquals(key, k) {
				want = i
				break
			}
		}
		if want >= 0 {
			v, r := p.value()
			if r != ReasonNone {
				return r
			}
			out[want] = v
		} else if r := p.skipValue(); r != ReasonNone {
			return r
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			p.depth--
			return ReasonNone
		default:
			return ReasonParse
		}
	}
}

// keyEquals compares a decoded key with an ASCII name, so that "o\u0070" is
// "op" as it is for JSON.parse.
func keyEquals(key jsonString, name string) bool {
	if !key.escaped {
		return string(key.raw) == name
	}
	if len(key.raw) > 6*len(name) { // every escape decodes to at least one byte
		return false
	}
	var buf [64]byte
	return string(appendStringText(buf[:0], key)) == name
}

// document checks that doc holds exactly one value surrounded by optional
// whitespace, like JSON.parse, and returns it.
func (p *parser) document() (Value, Reason) {
	v, r := p.value()
	if r != ReasonNone {
		return v, r
	}
	p.skipSpace()
	if p.pos != len(p.doc) {
		return v, ReasonParse
	}
	return v, ReasonNone
}
