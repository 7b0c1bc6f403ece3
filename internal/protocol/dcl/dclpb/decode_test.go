package dclpb

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestDecodeEmptyFrameIsPacketWithoutMessage(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		p, err := Decode(b, 0)
		if err != nil {
			t.Fatalf("Decode(%x): %v", b, err)
		}
		if p == nil || p.Message != nil {
			t.Fatalf("Decode(%x) = %v, want an empty packet", b, p)
		}
	}
}

// Frames the room server must close on: protobufjs throws on all of them.
func TestDecodeRejectsBrokenWireData(t *testing.T) {
	cases := map[string]string{
		"noise of the reference e2e test": "010203040506",
		"field number zero":               "00",
		"field zero with a value":         "0001",
		"truncated tag varint":            "80",
		"truncated value varint":          "08ff",
		"varint longer than 10 bytes":     "08ffffffffffffffffffff01",
		"length past the end":             "0a05 0801",
		"length varint truncated":         "0a",
		"huge length":                     "0affffffff0f",
		"truncated fixed32":               "0d0000",
		"truncated fixed64":               "090000000000",
		"lone end group":                  "0c",
		"group never closed":              "0b0801",
		"reserved wire type 6":            "0e",
		"reserved wire type 7":            "0f",
		"field number 2^29":               "808080801000",
		"broken bytes inside a message":   "3a02 0a05",
		"field zero inside a message":     "3a02 0001",
		"broken map entry":                "0a04 1202 0a05",
		"field zero inside a map entry":   "0a04 1202 0000",
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Decode(mustHex(t, h), 0)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %v, %v; want ErrMalformed", p, err)
			}
			if proto.Unmarshal(mustHex(t, h), &WsPacket{}) == nil {
				t.Fatalf("proto.Unmarshal accepts it: the two decoders disagree")
			}
		})
	}
}

// Misfit and unknown data is "no recognised message" (ignored by the room
// server after the handshake), never a decode error.
func TestDecodeSkipsUnknownAndMisfitFields(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want *WsPacket
	}{
		{"unknown top-level field 9", "4a020801", &WsPacket{}},
		{"unknown top-level varint", "5801", &WsPacket{}},
		{"highest valid field number", "f8ffffff0f01", &WsPacket{}},
		{"oneof field sent as varint", "0801", &WsPacket{}},
		{"oneof field sent as fixed32", "1d00000000", &WsPacket{}},
		{"oneof field sent as a group", "0b08010c", &WsPacket{}},
		{
			"string field sent as varint",
			"3a02 0801",
			&WsPacket{Message: &WsPacket_PeerIdentification{PeerIdentification: &WsIdentification{}}},
		},
		{
			"unknown field inside a known message",
			"1a07 0807 7a03010203",
			&WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{FromAlias: 7}}},
		},
		{
			"misfit inside a map entry",
			"0a06 1204 0a00 1001",
			&WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{PeerIdentities: map[uint32]string{0: ""}}}},
		},
		{
			"unknown after a known message",
			"32020807 a00601",
			&WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{Alias: 7}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(mustHex(t, tc.hex), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("decoded %v, want %v", got, tc.want)
			}
		})
	}
}

// Early Godot explorers sent raw rfc4.Packet bytes without the WsPacket
// wrapper. Each must decode to something the server ignores, not an error.
func TestDecodeLegacyRFC4PacketsAreNotErrors(t *testing.T) {
	cases := []struct {
		name string
		hex  string // rfc4.Packet encoding
		want *WsPacket
	}{
		{
			// Packet{profile_version{profile_version: 5}} looks like a peer_join.
			"profile version", "12020805",
			&WsPacket{Message: &WsPacket_PeerJoinMessage{PeerJoinMessage: &WsPeerJoin{Alias: 5}}},
		},
		{
			// Packet{position{index: 1, position_x: 1.0}} looks like a welcome.
			"position", "0a07 0801 1d0000803f",
			&WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{Alias: 1}}},
		},
		{
			// Packet{scene{scene_id: "s", data: 01}}: peer_leave with misfit fields.
			"scene", "3206 0a0173 120101",
			&WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{}}},
		},
		{
			// Packet{movement{timestamp: 1.0}}: peer_kicked with a fixed32 reason.
			"movement", "4205 0d0000803f",
			&WsPacket{Message: &WsPacket_PeerKicked{PeerKicked: &WsKicked{}}},
		},
		{
			// Packet{chat{message: "hi", timestamp: 0}}: a signed challenge of "hi".
			"chat", "2a0d 0a026869 110000000000000000",
			&WsPacket{Message: &WsPacket_SignedChallengeForServer{SignedChallengeForServer: &WsSignedChallenge{AuthChainJson: "hi"}}},
		},
		{
			// Packet{player_emote{incremental_id: 1}}: field 9, unknown.
			"player emote", "4a020801", &WsPacket{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(mustHex(t, tc.hex), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("decoded %v, want %v", got, tc.want)
			}
		})
	}
}

// Packet{voice{encoded_samples: ff fe 00 80, index: 2}} lands the opus bytes in
// WsIdentification.address. protobufjs does not validate UTF-8 and the
// reference ignores the packet; proto.Unmarshal would fail and close the peer.
func TestDecodeKeepsInvalidUTF8Strings(t *testing.T) {
	frame := mustHex(t, "3a08 0a04fffe0080 1002")
	if err := proto.Unmarshal(frame, &WsPacket{}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("proto.Unmarshal = %v; this test assumes it rejects invalid UTF-8", err)
	}
	p, err := Decode(frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.GetPeerIdentification().GetAddress(); got != "\xff\xfe\x00\x80" {
		t.Fatalf("address = %q", got)
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	frame := mustHex(t, "1a0708071203010203") // 9 bytes
	if _, err := Decode(frame, 9); err != nil {
		t.Fatalf("frame at the limit: %v", err)
	}
	if _, err := Decode(frame, 8); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame over the limit: err = %v, want ErrFrameTooLarge", err)
	}
	big := make([]byte, DefaultMaxFrameSize+1)
	for _, limit := range []int{0, -1} {
		if _, err := Decode(big, limit); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("limit %d must mean the 16 KiB default: err = %v", limit, err)
		}
	}
	// A 16 KiB peer update is fine with the default limit.
	body := make([]byte, DefaultMaxFrameSize-8)
	frame, err := proto.Marshal(&WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{Body: body}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > DefaultMaxFrameSize {
		t.Fatalf("test frame is %d bytes", len(frame))
	}
	if p, err := Decode(frame, 0); err != nil || len(p.GetPeerUpdateMessage().GetBody()) != len(body) {
		t.Fatalf("Decode = %v, %v", p, err)
	}
}

// Like proto.Unmarshal: a repeated oneof case merges, another case replaces,
// and the last scalar wins.
func TestDecodeRepeatedFieldsFollowProtobufMerge(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want *WsPacket
	}{
		{
			"same case merges", "1a020807 1a03120101",
			&WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{FromAlias: 7, Body: []byte{1}}}},
		},
		{
			"other case replaces", "1a020807 32020809",
			&WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{Alias: 9}}},
		},
		{
			"last scalar wins", "3204 0807 0809",
			&WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{Alias: 9}}},
		},
		{
			"welcome maps merge", "0a06 1204 0801 1200 0a06 1204 0802 1200",
			&WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{PeerIdentities: map[uint32]string{1: "", 2: ""}}}},
		},
		{
			"uint32 truncates a 64-bit varint", "3206 08ffffffff1f",
			&WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{Alias: 0xffffffff}}},
		},
		{
			"any non-zero varint is true", "1a02 1802",
			&WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{Unreliable: true}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := mustHex(t, tc.hex)
			got, err := Decode(frame, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("decoded %v, want %v", got, tc.want)
			}
			ref := &WsPacket{}
			if err := proto.Unmarshal(frame, ref); err != nil || !proto.Equal(ref, got) {
				t.Fatalf("proto.Unmarshal = %v, %v; differs from Decode", ref, err)
			}
		})
	}
}

func TestDecodeDoesNotAliasTheFrame(t *testing.T) {
	frame := mustHex(t, "1a0708071203010203")
	p, err := Decode(frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 0xee
	}
	if got := p.GetPeerUpdateMessage().GetBody(); string(got) != "\x01\x02\x03" {
		t.Fatalf("body changed with the input buffer: %x", got)
	}
}

func BenchmarkDecodePeerUpdate(b *testing.B) {
	frame, err := proto.Marshal(&WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{
		FromAlias: 12345, Body: make([]byte, 120),
	}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(frame, 0); err != nil {
			b.Fatal(err)
		}
	}
}
