// Package jsonscan validates and splits JSON without decoding it: the
// allocation-free fast paths of the Pusher protocol's hot messages (client
// events, HTTP API publishes) use it to find the spans of the few fields
// they read, and fall back to encoding/json for anything it declines.
//
// It is exactly as strict as encoding/json's own scanner (RFC 8259
// grammar; bytes of 0x80 and above pass inside strings, as encoding/json
// lets them), so a value it accepts is one encoding/json accepts too.
package jsonscan

// Value returns the index after the JSON value starting at b[i] (no
// leading whitespace), or -1 if there is none.
func Value(b []byte, i int) int { return value(b, i, 0) }

// Object calls member for each member of the JSON object that is all of b
// (no surrounding whitespace), in order, with the key's bytes (only plain
// keys: see String) and the value's span. It reports false if b is not
// such an object, a key is not plain, or member returned false.
func Object(b []byte, member func(key, value []byte) bool) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	i := SkipWS(b, 1)
	if i < len(b) && b[i] == '}' {
		return i+1 == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		kEnd, plain := String(b, i)
		if kEnd < 0 || !plain {
			return false
		}
		key := b[i+1 : kEnd-1]
		i = SkipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = SkipWS(b, i+1)
		end := Value(b, i)
		if end < 0 || !member(key, b[i:end]) {
			return false
		}
		i = SkipWS(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case '}':
			return i+1 == len(b)
		default:
			return false
		}
	}
}

// Array calls elem for each element's span of the JSON array that is all
// of b (no surrounding whitespace). It reports false if b is not such an
// array or elem returned false.
func Array(b []byte, elem func(value []byte) bool) bool {
	if len(b) < 2 || b[0] != '[' {
		return false
	}
	i := SkipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		return i+1 == len(b)
	}
	for {
		end := Value(b, i)
		if end < 0 || !elem(b[i:end]) {
			return false
		}
		i = SkipWS(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = SkipWS(b, i+1)
		case ']':
			return i+1 == len(b)
		default:
			return false
		}
	}
}

// PlainString returns the contents of v if v is a plain JSON string
// literal (see String), whose bytes are its value.
func PlainString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	end, plain := String(v, 0)
	if end != len(v) || !plain {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

func SkipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// String checks the JSON string starting at b[i] == '"' and returns
// the index after its closing quote (-1 if invalid) and whether it is
// plain: printable ASCII without escapes, so its bytes are its value.
func String(b []byte, i int) (int, bool) {
	plain := true
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		case c >= 0x7f:
			plain = false
		}
	}
	return -1, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// maxScanDepth bounds Value's recursion; deeper data falls back to
// encoding/json (whose own limit is 10,000).
const maxScanDepth = 64

// value returns the index after the JSON value starting at b[i], or -1
// if it is not one.
func value(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := String(b, i)
		return end
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return -1
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return -1
				}
				if i, _ = String(b, i); i < 0 {
					return -1
				}
				i = SkipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return -1
				}
				i = SkipWS(b, i+1)
			}
			if i = value(b, i, depth+1); i < 0 {
				return -1
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == closer {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = SkipWS(b, i+1)
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	}
	return -1
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// AppendUnquoteASCII appends the value of the JSON string literal v (all
// of v) to dst, for literals of ASCII whose only escapes are the
// two-character ones (\" \\ \/ \b \f \n \r \t): their value is unambiguous
// and encoding/json decodes them to exactly these bytes. Other literals
// (\u escapes, bytes of 0x80 and above, invalid ones) report false.
func AppendUnquoteASCII(dst, v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return dst, false
	}
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c < 0x20 || c >= 0x80 || c == '"':
			return dst, false
		case c == '\\':
			i++
			if i >= len(v)-1 {
				return dst, false
			}
			switch v[i] {
			case '"', '\\', '/':
				c = v[i]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default:
				return dst, false
			}
		}
		dst = append(dst, c)
	}
	return dst, true
}

// StringValue returns the value of the JSON string literal v with one
// allocation (the string), for plain literals and those
// AppendUnquoteASCII takes; false means decode v with encoding/json.
func StringValue(v []byte) (string, bool) {
	if p, ok := PlainString(v); ok {
		return string(p), true
	}
	var buf [512]byte
	u, ok := AppendUnquoteASCII(buf[:0], v)
	if !ok {
		return "", false
	}
	return string(u), true
}
