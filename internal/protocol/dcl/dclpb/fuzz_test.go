package dclpb

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecodeWsPacket checks Decode against proto.Unmarshal, the reference
// decoder of the generated types: both must accept and reject the same
// frames, and give the same message, except that Decode also accepts invalid
// UTF-8 in strings (see Decode). testdata/fuzz/FuzzDecodeWsPacket holds
// known-bad frames; the spec examples are added here.
func FuzzDecodeWsPacket(f *testing.F) {
	for _, ex := range wireExamples(f) {
		f.Add(mustHex(f, ex.hex))
	}
	const limit = 4096 // small, so the fuzzer also reaches the size check
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := Decode(frame, limit)
		if len(frame) > limit {
			if !errors.Is(err, ErrFrameTooLarge) || got != nil {
				t.Fatalf("oversize frame: %v, %v", got, err)
			}
			return
		}

		ref := &WsPacket{}
		refErr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(frame, ref)
		switch {
		case err != nil:
			if !errors.Is(err, ErrMalformed) || got != nil {
				t.Fatalf("unexpected error kind: %v, %v", got, err)
			}
			if refErr == nil {
				t.Fatalf("Decode rejects what proto.Unmarshal accepts (%v): %v", ref, err)
			}
		case refErr != nil:
			if !strings.Contains(refErr.Error(), "UTF-8") {
				t.Fatalf("Decode accepts what proto.Unmarshal rejects: %v (decoded %v)", refErr, got)
			}
		default:
			if !proto.Equal(got, ref) {
				t.Fatalf("decoders disagree:\nDecode          %v\nproto.Unmarshal %v", got, ref)
			}
			// What we decode must survive a round trip through the encoder.
			again, err := proto.Marshal(got)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := Decode(again, len(again))
			if err != nil || !proto.Equal(back, got) {
				t.Fatalf("round trip: %v, %v; want %v", back, err, got)
			}
		}
	})
}
