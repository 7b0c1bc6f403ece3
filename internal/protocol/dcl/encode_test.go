package dcl

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
)

const specAddr = "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5"

// The byte-exact examples of spec section 3.2 (Go protowire == ts-proto).
func TestEncodeMatchesSpecBytes(t *testing.T) {
	addrHex := hex.EncodeToString([]byte(specAddr))
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"challenge", encodeChallenge("dcl-0.4fzyo82mvyr", false), "22130a1164636c2d302e34667a796f38326d767972"},
		{"challenge already", encodeChallenge("dcl-0.4fzyo82mvyr", true), "22150a1164636c2d302e34667a796f38326d7679721001"},
		{"welcome one peer", encodeWelcome(7, []identity{{3, specAddr}}), "0a320807122e0803122a" + addrHex},
		{"welcome alone", encodeWelcome(1, nil), "0a020801"},
		{"peer_join", encodePeerJoin(7, specAddr), "122e0807122a" + addrHex},
		{"peer_update", encodePeerUpdate(7, []byte{1, 2, 3}, false), "1a0708071203010203"},
		{"peer_update unreliable", encodePeerUpdate(7, []byte{1, 2, 3}, true), "1a09080712030102031801"},
		{"peer_leave", encodePeerLeave(7), "32020807"},
		{"kicked empty", encodeKicked(""), "4200"},
		{"kicked", encodeKicked("Already connected"), "42130a11416c726561647920636f6e6e6563746564"},
	}
	for _, c := range cases {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// Every encoder agrees with the generated types: proto.Unmarshal and
// dclpb.Decode read back what was written, for edge values too.
func TestEncodeRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 20000)
	peers := []identity{{9, "0xb"}, {1 << 31, specAddr}, {2, strings.ToUpper(specAddr)}}
	cases := []struct {
		b    []byte
		want *dclpb.WsPacket
	}{
		{encodePeerUpdate(0, nil, false), &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{PeerUpdateMessage: &dclpb.WsPeerUpdate{}}}},
		{encodePeerUpdate(^uint32(0), big, true), &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{PeerUpdateMessage: &dclpb.WsPeerUpdate{FromAlias: ^uint32(0), Body: big, Unreliable: true}}}},
		{encodeWelcome(300, peers), &dclpb.WsPacket{Message: &dclpb.WsPacket_WelcomeMessage{WelcomeMessage: &dclpb.WsWelcome{Alias: 300,
			PeerIdentities: map[uint32]string{9: "0xb", 1 << 31: specAddr, 2: strings.ToUpper(specAddr)}}}}},
		{encodePeerJoin(1<<20, ""), &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerJoinMessage{PeerJoinMessage: &dclpb.WsPeerJoin{Alias: 1 << 20}}}},
		{encodePeerLeave(0), &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerLeaveMessage{PeerLeaveMessage: &dclpb.WsPeerLeave{}}}},
		{encodeChallenge(newChallenge(), true), nil},
		{encodeKicked(ReasonRoomFull), &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerKicked{PeerKicked: &dclpb.WsKicked{Reason: ReasonRoomFull}}}},
	}
	for i, c := range cases {
		var got dclpb.WsPacket
		if err := proto.Unmarshal(c.b, &got); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		dec, err := dclpb.Decode(c.b, 1<<20)
		if err != nil {
			t.Fatalf("%d: Decode: %v", i, err)
		}
		if !proto.Equal(&got, dec) {
			t.Errorf("%d: Unmarshal %v != Decode %v", i, &got, dec)
		}
		if c.want != nil && !proto.Equal(&got, c.want) {
			t.Errorf("%d: got %v, want %v", i, &got, c.want)
		}
		// Deterministic proto.Marshal writes the same bytes (fields in
		// order, map sorted by key).
		std, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&got)
		if !bytes.Equal(std, c.b) {
			t.Errorf("%d: proto.Marshal %x, ours %x", i, std, c.b)
		}
	}
}

func TestChallengeFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := newChallenge()
		if len(c) != 29 || !strings.HasPrefix(c, "dcl-") || strings.Trim(c[4:], "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("challenge %q", c)
		}
		if seen[c] {
			t.Fatalf("challenge %q repeated", c)
		}
		seen[c] = true
	}
}
