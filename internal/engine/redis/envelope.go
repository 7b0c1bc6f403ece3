package redisengine

import (
	"encoding/binary"
	"errors"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// The wire format between nodes. Both messages start with a version byte so
// a rolling upgrade can tell formats apart; strings are uvarint-length
// prefixed; a publication's payload is the rest of the message, so it is
// copied once and never escaped.
//
//	publication: 1 | flags | origin | namespace | channel | excludeConn | payload...
//	control:     1 | kind  | origin | target | namespace | a | b
const wireVersion = 1

const flagBinary = 1

var errEnvelope = errors.New("redisengine: malformed message")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readString reads one length-prefixed string from s at off.
func readString(s string, off int) (string, int, error) {
	if off >= len(s) {
		return "", 0, errEnvelope
	}
	var l uint64
	var shift uint
	for i := off; ; i++ {
		if i >= len(s) || shift > 63 {
			return "", 0, errEnvelope
		}
		c := s[i]
		l |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > off {
				return "", 0, errEnvelope // not minimal: one message, one encoding
			}
			off = i + 1
			break
		}
		shift += 7
	}
	if l > uint64(len(s)-off) {
		return "", 0, errEnvelope
	}
	end := off + int(l)
	return s[off:end], end, nil
}

// encodePublication encodes p as sent by origin.
func encodePublication(origin string, p engine.Publication) []byte {
	n := 2 + 4*binary.MaxVarintLen32 + len(origin) + len(p.Namespace) + len(p.Channel) + len(p.ExcludeConn) + len(p.Payload)
	b := make([]byte, 0, n)
	var flags byte
	if p.Binary {
		flags |= flagBinary
	}
	b = append(b, wireVersion, flags)
	b = appendString(b, origin)
	b = appendString(b, p.Namespace)
	b = appendString(b, p.Channel)
	b = appendString(b, p.ExcludeConn)
	return append(b, p.Payload...)
}

// decodePublication decodes a message read from Redis. The strings share
// the message's memory; the payload is copied (the hub may keep it).
func decodePublication(s string) (origin string, p engine.Publication, err error) {
	if len(s) < 2 || s[0] != wireVersion || s[1]&^flagBinary != 0 {
		return "", p, errEnvelope
	}
	p.Binary = s[1]&flagBinary != 0
	off := 2
	if origin, off, err = readString(s, off); err != nil {
		return "", p, err
	}
	if p.Namespace, off, err = readString(s, off); err != nil {
		return "", p, err
	}
	if p.Channel, off, err = readString(s, off); err != nil {
		return "", p, err
	}
	if p.ExcludeConn, off, err = readString(s, off); err != nil {
		return "", p, err
	}
	p.Payload = []byte(s[off:])
	return origin, p, nil
}

type controlKind byte

const (
	ctlTerminate controlKind = 1 // a: user id; every node
	ctlKick      controlKind = 2 // a: conn key, b: claim key; the target node
)

type control struct {
	kind      controlKind
	origin    string
	target    string // "" for every node
	namespace string
	a, b      string
}

func encodeControl(c control) []byte {
	b := make([]byte, 0, 2+5*binary.MaxVarintLen32+len(c.origin)+len(c.target)+len(c.namespace)+len(c.a)+len(c.b))
	b = append(b, wireVersion, byte(c.kind))
	for _, s := range []string{c.origin, c.target, c.namespace, c.a, c.b} {
		b = appendString(b, s)
	}
	return b
}

func decodeControl(s string) (control, error) {
	var c control
	if len(s) < 2 || s[0] != wireVersion {
		return c, errEnvelope
	}
	c.kind = controlKind(s[1])
	if c.kind != ctlTerminate && c.kind != ctlKick {
		return c, errEnvelope
	}
	off := 2
	var err error
	for _, dst := range []*string{&c.origin, &c.target, &c.namespace, &c.a, &c.b} {
		if *dst, off, err = readString(s, off); err != nil {
			return c, err
		}
	}
	if off != len(s) {
		return c, errEnvelope
	}
	return c, nil
}
