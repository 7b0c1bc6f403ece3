package transport

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes used by the transport itself.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// appendFrameHeader appends an unmasked server frame header (FIN set).
func appendFrameHeader(dst []byte, op byte, rsv1 bool, n int) []byte {
	b0 := 0x80 | op
	if rsv1 {
		b0 |= 0x40
	}
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 section 7.4): 1000-1003, 1007-1011 and 3000-4999. 1004-1006 and
// 1015 are reserved and must never appear on the wire.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// parseClosePayload checks a received close frame body. It returns the
// code to echo (0 for an empty body) or a close code describing the
// violation in bad.
func parseClosePayload(p []byte) (code uint16, reason string, bad uint16) {
	switch {
	case len(p) == 0:
		return 0, "", 0
	case len(p) == 1:
		return 0, "", CloseProtocolError
	}
	code = binary.BigEndian.Uint16(p)
	if !validCloseCode(code) {
		return 0, "", CloseProtocolError
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", CloseInvalidPayload
	}
	return code, string(p[2:]), 0
}

// closeMessage builds a close frame body. RFC 6455 requires the reason to
// be valid UTF-8 (strict clients fail the connection with 1007 otherwise),
// so invalid sequences are replaced, and it is cut to the 125-byte control
// frame limit on a character boundary.
func closeMessage(code uint16, reason string) *Message {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) > 123 {
		cut := 123
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, code)
	p = append(p, reason...)
	return &Message{Payload: p, kind: kindClose}
}
