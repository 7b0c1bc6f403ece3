package natsengine

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	in := envelope{Kind: kindPublish, Binary: true, Origin: "n1", Namespace: "app", Channel: "presence-a.b", Conn: "123.456", Payload: []byte{0, 1, 2}}
	var out envelope
	if err := decodeEnvelope(appendEnvelope(nil, &in), &out); err != nil {
		t.Fatal(err)
	}
	if out.Kind != in.Kind || out.Binary != in.Binary || out.Origin != in.Origin || out.Namespace != in.Namespace ||
		out.Channel != in.Channel || out.Conn != in.Conn || !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("round trip: %+v", out)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 1, 0}, {1, 9, 0}, {1, 1, 4}, {1, 1, 0, 5, 'a'}, {1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}} {
		if err := decodeEnvelope(bad, &out); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
}

// FuzzEnvelope: the decoder never panics and what it accepts re-encodes
// to the same bytes. Seeds include known-bad frames.
func FuzzEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, &envelope{Kind: kindPublish, Origin: "n", Namespace: "a", Channel: "c", Payload: []byte("{}")}))
	f.Add(appendEnvelope(nil, &envelope{Kind: kindKick, Binary: true, Channel: "0xabc", Conn: "k"}))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0x80})
	f.Add([]byte{1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 3, 1, 200, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e envelope
		if decodeEnvelope(b, &e) != nil {
			return
		}
		var again envelope
		if err := decodeEnvelope(appendEnvelope(nil, &e), &again); err != nil || again.Channel != e.Channel || !bytes.Equal(again.Payload, e.Payload) {
			t.Fatalf("re-encode of %x: %v", b, err)
		}
	})
}

// BenchmarkEnvelope: go test -run '^$' -bench Envelope -benchmem ./internal/engine/nats/
func BenchmarkEnvelope(b *testing.B) {
	e := envelope{Kind: kindPublish, Origin: "a1b2c3d4e5f6", Namespace: "app-1", Channel: "private-chat.room-42", Conn: "1234.5678", Payload: bytes.Repeat([]byte("x"), 200)}
	buf := make([]byte, 0, envelopeSize(&e))
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = appendEnvelope(buf[:0], &e)
		}
	})
	enc := appendEnvelope(nil, &e)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var out envelope
		for b.Loop() {
			if err := decodeEnvelope(enc, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
