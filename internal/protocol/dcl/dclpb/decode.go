package dclpb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultMaxFrameSize is the inbound frame limit of the reference server: it
// never sets uWebSockets.js maxPayloadLength, whose default is 16 KiB.
const DefaultMaxFrameSize = 16 * 1024

// Errors returned by Decode. Both mean "close the connection" to the room
// server; they are distinct so the two can be counted apart.
var (
	// ErrFrameTooLarge: the frame is longer than the size limit.
	ErrFrameTooLarge = errors.New("dclpb: frame exceeds size limit")
	// ErrMalformed: the frame is not valid protobuf wire data (truncated
	// varint or length, field number 0, lone end-group, reserved wire type...).
	ErrMalformed = errors.New("dclpb: malformed frame")
)

// Decode parses one inbound ws-room frame with the rules of the reference
// server (protobufjs / ts-proto) where they matter to a peer:
//
//   - len(b) > maxSize fails with ErrFrameTooLarge. maxSize <= 0 means
//     DefaultMaxFrameSize, never "unlimited".
//   - An empty frame is a valid WsPacket with no oneof set.
//   - Unknown fields are skipped, at every level.
//   - A known field with an unexpected wire type is skipped as if unknown, so
//     a misfit packet decodes to "no recognised message" instead of an error.
//   - Broken wire data fails with ErrMalformed.
//   - String fields are NOT checked for valid UTF-8. protobufjs never rejects
//     a frame for that, and early Godot clients sent raw rfc4 voice packets
//     whose opus bytes land in WsIdentification.address; those frames must be
//     ignored, not turn into a close. (proto.Unmarshal would reject them.)
//
// Apart from UTF-8 the result equals proto.Unmarshal's, unknown fields aside
// (they are dropped, not kept): repeated scalars keep the last value, a
// repeated oneof message of the same case is merged, map entries with a
// missing key or value get the zero value. The fuzz test checks this.
//
// The result never aliases b: the caller may reuse its read buffer at once.
func Decode(b []byte, maxSize int) (*WsPacket, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(b), maxSize)
	}
	p := &WsPacket{}
	if err := decodePacket(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// wireField is one decoded field: its number, wire type, and the value for the
// two wire types this schema uses. Other wire types are only skipped.
type wireField struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64
	bytes  []byte // aliases the input: copy before keeping
}

// fieldIter walks the fields of one message body.
type fieldIter struct {
	b   []byte
	off int // offset of b[0] within the original frame, for error messages
}

// next returns the next field, ok=false at the end of the message.
func (it *fieldIter) next() (f wireField, ok bool, err error) {
	if len(it.b) == 0 {
		return f, false, nil
	}
	num, typ, n := protowire.ConsumeTag(it.b)
	if n < 0 {
		return f, false, it.fail("tag", protowire.ParseError(n))
	}
	// ConsumeTag accepts up to MaxInt32; protobuf (and proto.Unmarshal) stop at 2^29-1.
	if num > protowire.MaxValidNumber {
		return f, false, it.fail("tag", fmt.Errorf("field number %d out of range", num))
	}
	f.num, f.typ = num, typ
	rest := it.b[n:]
	var m int
	switch typ {
	case protowire.VarintType:
		f.varint, m = protowire.ConsumeVarint(rest)
	case protowire.BytesType:
		f.bytes, m = protowire.ConsumeBytes(rest)
	default:
		// Fixed32/64 and groups are skipped whole; EndGroup alone and the
		// reserved types 6 and 7 are errors, as in every protobuf runtime.
		m = protowire.ConsumeFieldValue(num, typ, rest)
	}
	if m < 0 {
		return f, false, it.fail(fmt.Sprintf("field %d", num), protowire.ParseError(m))
	}
	it.b = rest[m:]
	it.off += n + m
	return f, true, nil
}

func (it *fieldIter) fail(what string, err error) error {
	return fmt.Errorf("%w: %s at byte %d: %v", ErrMalformed, what, it.off, err)
}

// sub returns an iterator over the length-delimited field next just returned:
// its bytes end at it.off, so that is where they start within the frame.
func (it *fieldIter) sub(f wireField) *fieldIter {
	return &fieldIter{b: f.bytes, off: it.off - len(f.bytes)}
}

func decodePacket(b []byte, p *WsPacket) error {
	it := &fieldIter{b: b}
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		if f.typ != protowire.BytesType || f.num < 1 || f.num > 8 {
			continue // unknown field, or a known one with the wrong wire type
		}
		if err := decodeCase(it.sub(f), f.num, p); err != nil {
			return err
		}
	}
}

// decodeCase decodes oneof case num into p. Like proto.Unmarshal, a case that
// repeats the current one merges into it; any other case replaces it.
func decodeCase(it *fieldIter, num protowire.Number, p *WsPacket) error {
	switch num {
	case 1:
		c, ok := p.Message.(*WsPacket_WelcomeMessage)
		if !ok || c.WelcomeMessage == nil {
			c = &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{}}
		}
		p.Message = c
		return decodeWelcome(it, c.WelcomeMessage)
	case 2:
		c, ok := p.Message.(*WsPacket_PeerJoinMessage)
		if !ok || c.PeerJoinMessage == nil {
			c = &WsPacket_PeerJoinMessage{PeerJoinMessage: &WsPeerJoin{}}
		}
		p.Message = c
		return decodePeerJoin(it, c.PeerJoinMessage)
	case 3:
		c, ok := p.Message.(*WsPacket_PeerUpdateMessage)
		if !ok || c.PeerUpdateMessage == nil {
			c = &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{}}
		}
		p.Message = c
		return decodePeerUpdate(it, c.PeerUpdateMessage)
	case 4:
		c, ok := p.Message.(*WsPacket_ChallengeMessage)
		if !ok || c.ChallengeMessage == nil {
			c = &WsPacket_ChallengeMessage{ChallengeMessage: &WsChallengeRequired{}}
		}
		p.Message = c
		return decodeChallenge(it, c.ChallengeMessage)
	case 5:
		c, ok := p.Message.(*WsPacket_SignedChallengeForServer)
		if !ok || c.SignedChallengeForServer == nil {
			c = &WsPacket_SignedChallengeForServer{SignedChallengeForServer: &WsSignedChallenge{}}
		}
		p.Message = c
		return decodeStringField(it, &c.SignedChallengeForServer.AuthChainJson)
	case 6:
		c, ok := p.Message.(*WsPacket_PeerLeaveMessage)
		if !ok || c.PeerLeaveMessage == nil {
			c = &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{}}
		}
		p.Message = c
		return decodeAliasOnly(it, &c.PeerLeaveMessage.Alias)
	case 7:
		c, ok := p.Message.(*WsPacket_PeerIdentification)
		if !ok || c.PeerIdentification == nil {
			c = &WsPacket_PeerIdentification{PeerIdentification: &WsIdentification{}}
		}
		p.Message = c
		return decodeStringField(it, &c.PeerIdentification.Address)
	case 8:
		c, ok := p.Message.(*WsPacket_PeerKicked)
		if !ok || c.PeerKicked == nil {
			c = &WsPacket_PeerKicked{PeerKicked: &WsKicked{}}
		}
		p.Message = c
		return decodeStringField(it, &c.PeerKicked.Reason)
	}
	return nil
}

func decodeWelcome(it *fieldIter, m *WsWelcome) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			m.Alias = uint32(f.varint)
		case f.num == 2 && f.typ == protowire.BytesType:
			k, v, err := decodeIdentityEntry(it.sub(f))
			if err != nil {
				return err
			}
			if m.PeerIdentities == nil {
				m.PeerIdentities = make(map[uint32]string)
			}
			m.PeerIdentities[k] = v
		}
	}
}

// decodeIdentityEntry decodes one map<uint32,string> entry. A missing key or
// value is the zero value: ts-proto omits a zero key and an empty value.
func decodeIdentityEntry(it *fieldIter) (key uint32, val string, err error) {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return key, val, err
		}
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			key = uint32(f.varint)
		case f.num == 2 && f.typ == protowire.BytesType:
			val = string(f.bytes)
		}
	}
}

func decodePeerJoin(it *fieldIter, m *WsPeerJoin) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			m.Alias = uint32(f.varint)
		case f.num == 2 && f.typ == protowire.BytesType:
			m.Address = string(f.bytes)
		}
	}
}

func decodePeerUpdate(it *fieldIter, m *WsPeerUpdate) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			m.FromAlias = uint32(f.varint)
		case f.num == 2 && f.typ == protowire.BytesType:
			// Copy: the body outlives the caller's read buffer (it is fanned out).
			m.Body = append([]byte{}, f.bytes...)
		case f.num == 3 && f.typ == protowire.VarintType:
			m.Unreliable = protowire.DecodeBool(f.varint)
		}
	}
}

func decodeChallenge(it *fieldIter, m *WsChallengeRequired) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			m.ChallengeToSign = string(f.bytes)
		case f.num == 2 && f.typ == protowire.VarintType:
			m.AlreadyConnected = protowire.DecodeBool(f.varint)
		}
	}
}

// decodeStringField decodes a message whose only field is string field 1.
func decodeStringField(it *fieldIter, dst *string) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			*dst = string(f.bytes)
		}
	}
}

// decodeAliasOnly decodes a message whose only field is uint32 field 1.
func decodeAliasOnly(it *fieldIter, dst *uint32) error {
	for {
		f, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		if f.num == 1 && f.typ == protowire.VarintType {
			*dst = uint32(f.varint)
		}
	}
}
