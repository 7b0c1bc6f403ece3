package wire

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// This file reproduces how the reference's JavaScript sees text: bytes are
// decoded with Buffer.toString() (UTF-8, WHATWG replacement of invalid
// sequences), strings are UTF-16 (so lone surrogates from \uD800 escapes
// exist), numbers are IEEE-754 doubles, and output is JSON.stringify's
// (well-formed JSON.stringify, Node >= 12).

// jsonString is a validated string literal from a document.
type jsonString struct {
	raw     []byte // between the quotes, escapes not decoded
	escaped bool   // raw contains a backslash
	high    bool   // raw contains a byte >= 0x80
}

// plain reports whether raw already is the decoded text and the
// JSON.stringify encoding of it: no escapes, and any non-ASCII bytes form
// valid UTF-8 (Go and WHATWG agree on validity).
func (s jsonString) plain() bool {
	return !s.escaped && (!s.high || utf8.Valid(s.raw))
}

// appendStringJSON appends JSON.stringify(JSON.parse('"'+raw+'"')).
func appendStringJSON(dst []byte, s jsonString) []byte {
	dst = append(dst, '"')
	if s.plain() {
		dst = append(dst, s.raw...)
	} else {
		dst = appendStringUnits(dst, s.raw, true)
	}
	return append(dst, '"')
}

// appendStringText appends the decoded string as WTF-8: UTF-8 in which lone
// surrogates keep their own 3-byte encoding. Two JavaScript strings are equal
// exactly when their WTF-8 forms are, which is what map keys need.
func appendStringText(dst []byte, s jsonString) []byte {
	if s.plain() {
		return append(dst, s.raw...)
	}
	return appendStringUnits(dst, s.raw, false)
}

// appendStringUnits decodes raw (validated JSON string content) into UTF-16
// code units, pairing surrogates, and appends each one either JSON-escaped as
// JSON.stringify does (jsonOut) or as WTF-8.
func appendStringUnits(dst, raw []byte, jsonOut bool) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			if e != 'u' {
				dst = appendUnit(dst, rune(unescapeByte(e)), jsonOut)
				i += 2
				continue
			}
			u := hex4(raw[i+2:])
			i += 6
			if u >= 0xD800 && u <= 0xDBFF && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if lo := hex4(raw[i+2:]); lo >= 0xDC00 && lo <= 0xDFFF {
					dst = utf8.AppendRune(dst, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
					i += 6
					continue
				}
			}
			dst = appendUnit(dst, u, jsonOut)
		case c < utf8.RuneSelf:
			dst = appendUnit(dst, rune(c), jsonOut)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n <= 1 {
				n = invalidUTF8Len(raw[i:])
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

// appendUnit appends one code point, or one lone surrogate code unit.
func appendUnit(dst []byte, u rune, jsonOut bool) []byte {
	isSurrogate := u >= 0xD800 && u <= 0xDFFF
	if !jsonOut {
		if isSurrogate {
			return append(dst, byte(0xE0|u>>12), byte(0x80|(u>>6)&0x3F), byte(0x80|u&0x3F))
		}
		return utf8.AppendRune(dst, u)
	}
	switch {
	case u == '"':
		return append(dst, '\\', '"')
	case u == '\\':
		return append(dst, '\\', '\\')
	case u == '\b':
		return append(dst, '\\', 'b')
	case u == '\f':
		return append(dst, '\\', 'f')
	case u == '\n':
		return append(dst, '\\', 'n')
	case u == '\r':
		return append(dst, '\\', 'r')
	case u == '\t':
		return append(dst, '\\', 't')
	case u < 0x20 || isSurrogate:
		// JSON.stringify writes these as \u with lowercase hex.
		const hexDigits = "0123456789abcdef"
		return append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[(u>>8)&0xF], hexDigits[(u>>4)&0xF], hexDigits[u&0xF])
	}
	return utf8.AppendRune(dst, u)
}

// invalidUTF8Len returns how many bytes at the start of b (which do not begin
// a valid UTF-8 sequence) the WHATWG decoder replaces with one U+FFFD: the
// "maximal subpart", i.e. a lead byte plus the continuation bytes that were
// still acceptable before the sequence broke off. Go's utf8 package would
// replace byte by byte, giving more U+FFFD than Node for truncated sequences
// such as E2 82.
func invalidUTF8Len(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	need := 0
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		switch c {
		case 0xE0:
			lo = 0xA0
		case 0xED:
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		switch c {
		case 0xF0:
			lo = 0x90
		case 0xF4:
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}

func unescapeByte(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// parseNumber returns the double JSON.parse makes of a validated number
// literal: correctly rounded, ±Inf past the double range (1e400), ±0 below it.
func parseNumber(raw []byte) float64 {
	f, _ := strconv.ParseFloat(string(raw), 64) // only range errors remain, and f is right for them
	return f
}

// appendNumberJSON appends JSON.stringify(JSON.parse(raw)) for a validated
// number literal.
func appendNumberJSON(dst, raw []byte) []byte {
	// Fast path: an integer of at most 15 digits is an exact double and
	// prints exactly as written (but -0 prints as 0).
	digits := raw
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) <= 15 {
		isInt := true
		for _, c := range digits {
			if c < '0' || c > '9' {
				isInt = false
				break
			}
		}
		if isInt {
			if digits[0] == '0' {
				return append(dst, '0')
			}
			return append(dst, raw...)
		}
	}
	return appendJSFloat(dst, parseNumber(raw))
}

// appendJSFloat appends JSON.stringify(f): Number.prototype.toString for
// finite values (shortest round-trip digits; plain notation for
// 1e-7 <= |f| < 1e21, exponent notation like 1e+21 or 1.5e-7 outside), and
// "null" for infinities. -0 becomes "0".
func appendJSFloat(dst []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±XX, shortest digits
	var digitBuf [24]byte
	digits := digitBuf[:0]
	j := 0
	for ; b[j] != 'e'; j++ {
		if b[j] != '.' {
			digits = append(digits, b[j])
		}
	}
	exp := 0
	neg := b[j+1] == '-'
	for _, c := range b[j+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	// ECMA-262 Number::toString: value = 0.digits × 10^n.
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
