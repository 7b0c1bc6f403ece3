package dclpb

import (
	"encoding/hex"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// testAddr is the public test identity of the Decentraland crypto fixtures.
const testAddr = "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// wireExample is one byte-exact frame from the spec (section 3.2), checked
// against ts-proto's encoder upstream; our encoder must produce the same
// bytes and our decoder must read them back.
type wireExample struct {
	name string
	msg  *WsPacket
	hex  string
}

func wireExamples(t testing.TB) []wireExample {
	addrHex := hex.EncodeToString([]byte(testAddr))
	if len(addrHex) != 84 {
		t.Fatalf("test address is not 42 bytes")
	}
	return []wireExample{
		{
			name: "identification",
			msg:  &WsPacket{Message: &WsPacket_PeerIdentification{PeerIdentification: &WsIdentification{Address: testAddr}}},
			hex:  "3a2c 0a2a" + addrHex,
		},
		{
			name: "challenge not connected",
			msg: &WsPacket{Message: &WsPacket_ChallengeMessage{ChallengeMessage: &WsChallengeRequired{
				ChallengeToSign: "dcl-0.4fzyo82mvyr",
			}}},
			hex: "22130a1164636c2d302e34667a796f38326d767972",
		},
		{
			name: "challenge already connected",
			msg: &WsPacket{Message: &WsPacket_ChallengeMessage{ChallengeMessage: &WsChallengeRequired{
				ChallengeToSign: "dcl-0.4fzyo82mvyr", AlreadyConnected: true,
			}}},
			hex: "22150a1164636c2d302e34667a796f38326d7679721001",
		},
		{
			name: "welcome with one peer",
			msg: &WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{
				Alias: 7, PeerIdentities: map[uint32]string{3: testAddr},
			}}},
			hex: "0a32 0807 122e 0803 122a" + addrHex,
		},
		{
			name: "welcome alone",
			msg:  &WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{Alias: 1}}},
			hex:  "0a020801",
		},
		{
			name: "peer join",
			msg: &WsPacket{Message: &WsPacket_PeerJoinMessage{PeerJoinMessage: &WsPeerJoin{
				Alias: 7, Address: testAddr,
			}}},
			hex: "122e 0807 122a" + addrHex,
		},
		{
			name: "peer update reliable",
			msg: &WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{
				FromAlias: 7, Body: []byte{1, 2, 3},
			}}},
			hex: "1a0708071203010203",
		},
		{
			name: "peer update unreliable",
			msg: &WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{
				FromAlias: 7, Body: []byte{1, 2, 3}, Unreliable: true,
			}}},
			hex: "1a09080712030102031801",
		},
		{
			name: "peer leave",
			msg:  &WsPacket{Message: &WsPacket_PeerLeaveMessage{PeerLeaveMessage: &WsPeerLeave{Alias: 7}}},
			hex:  "32020807",
		},
		{
			name: "kicked without reason",
			msg:  &WsPacket{Message: &WsPacket_PeerKicked{PeerKicked: &WsKicked{}}},
			hex:  "4200",
		},
		{
			name: "kicked already connected",
			msg:  &WsPacket{Message: &WsPacket_PeerKicked{PeerKicked: &WsKicked{Reason: "Already connected"}}},
			hex:  "42130a11416c726561647920636f6e6e6563746564",
		},
	}
}

func TestWireExamplesEncode(t *testing.T) {
	for _, ex := range wireExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			got, err := proto.MarshalOptions{Deterministic: true}.Marshal(ex.msg)
			if err != nil {
				t.Fatal(err)
			}
			want := mustHex(t, ex.hex)
			if hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Fatalf("encoding differs\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestWireExamplesDecode(t *testing.T) {
	for _, ex := range wireExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			got, err := Decode(mustHex(t, ex.hex), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, ex.msg) {
				t.Fatalf("decoded %v, want %v", got, ex.msg)
			}
		})
	}
}

// Encoders that write proto3 defaults anyway (Go may write a zero map key or
// an empty value, ts-proto omits them) must decode to the same message.
func TestDecodeAcceptsExplicitDefaults(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want *WsPacket
	}{
		{
			name: "map entry with zero key written",
			hex:  "0a08 0801 1204 0800 1200",
			want: &WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{
				Alias: 1, PeerIdentities: map[uint32]string{0: ""},
			}}},
		},
		{
			name: "map entry with key and value omitted",
			hex:  "0a04 0801 1200",
			want: &WsPacket{Message: &WsPacket_WelcomeMessage{WelcomeMessage: &WsWelcome{
				Alias: 1, PeerIdentities: map[uint32]string{0: ""},
			}}},
		},
		{
			name: "false and zero written",
			hex:  "1a06 0800 1200 1800",
			want: &WsPacket{Message: &WsPacket_PeerUpdateMessage{PeerUpdateMessage: &WsPeerUpdate{}}},
		},
		{
			name: "challenge with already_connected=false written",
			hex:  "2205 0a01 61 1000",
			want: &WsPacket{Message: &WsPacket_ChallengeMessage{ChallengeMessage: &WsChallengeRequired{ChallengeToSign: "a"}}},
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
