package dcl

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Outbound WsPacket encoders. The server sends seven tiny message kinds; they
// are written by hand with protowire, in field order, with proto3's rule that
// a scalar equal to its default is not written. The output is byte-identical
// to ts-proto's WsPacket.encode for every packet the server sends (spec
// section 3.2; encode_test.go checks the table and proto.Unmarshal).
//
// WsPacket oneof field numbers.
const (
	fieldWelcome    = 1
	fieldPeerJoin   = 2
	fieldPeerUpdate = 3
	fieldChallenge  = 4
	fieldPeerLeave  = 6
	fieldKicked     = 8
)

// appendSub appends oneof field num holding a submessage of size n, whose
// body the caller appends next.
func appendSub(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func packetSize(inner int) int { return 1 + protowire.SizeVarint(uint64(inner)) + inner }

// encodePeerUpdate is the relayed peer_update_message{from_alias, body,
// unreliable}: the one packet on the hot path, encoded once per inbound
// update into one exactly sized buffer.
func encodePeerUpdate(fromAlias uint32, body []byte, unreliable bool) []byte {
	inner := sizeUint(1, uint64(fromAlias)) + sizeBytes(2, len(body))
	if unreliable {
		inner += 2
	}
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldPeerUpdate, inner)
	b = appendUint(b, 1, uint64(fromAlias))
	if len(body) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, body)
	}
	if unreliable {
		b = append(b, 0x18, 0x01)
	}
	return b
}

// identity is one entry of a welcome's peer_identities map.
type identity struct {
	alias   uint32
	address string
}

// encodeWelcome is welcome_message{alias, peer_identities}. Entries are
// written in alias order, so the bytes are deterministic.
func encodeWelcome(alias uint32, peers []identity) []byte {
	slices.SortFunc(peers, func(a, b identity) int { return cmpUint32(a.alias, b.alias) })
	inner := sizeUint(1, uint64(alias))
	for _, p := range peers {
		inner += sizeBytes(2, entrySize(p))
	}
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldWelcome, inner)
	b = appendUint(b, 1, uint64(alias))
	for _, p := range peers {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(p)))
		b = appendUint(b, 1, uint64(p.alias))
		b = appendString(b, 2, p.address)
	}
	return b
}

func entrySize(p identity) int {
	return sizeUint(1, uint64(p.alias)) + sizeBytes(2, len(p.address))
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encodePeerJoin is peer_join_message{alias, address}.
func encodePeerJoin(alias uint32, address string) []byte {
	inner := sizeUint(1, uint64(alias)) + sizeBytes(2, len(address))
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldPeerJoin, inner)
	b = appendUint(b, 1, uint64(alias))
	return appendString(b, 2, address)
}

// encodePeerLeave is peer_leave_message{alias}.
func encodePeerLeave(alias uint32) []byte {
	inner := sizeUint(1, uint64(alias))
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldPeerLeave, inner)
	return appendUint(b, 1, uint64(alias))
}

// encodeChallenge is challenge_message{challenge_to_sign, already_connected}.
func encodeChallenge(challenge string, alreadyConnected bool) []byte {
	inner := sizeBytes(1, len(challenge))
	if alreadyConnected {
		inner += 2
	}
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldChallenge, inner)
	b = appendString(b, 1, challenge)
	if alreadyConnected {
		b = append(b, 0x10, 0x01)
	}
	return b
}

// encodeKicked is peer_kicked{reason}; an empty reason still writes the
// (empty) submessage, because the oneof is set.
func encodeKicked(reason string) []byte {
	inner := sizeBytes(1, len(reason))
	b := make([]byte, 0, packetSize(inner))
	b = appendSub(b, fieldKicked, inner)
	return appendString(b, 1, reason)
}
