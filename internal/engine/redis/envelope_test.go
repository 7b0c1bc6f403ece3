package redisengine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

func TestPublicationRoundTrip(t *testing.T) {
	for _, p := range []engine.Publication{
		{Namespace: "app", Channel: "news", Payload: []byte(`{"event":"x"}`)},
		{Namespace: "dcl:room", Channel: "", Payload: []byte{0, 1, 2, 0xff}, Binary: true, ExcludeConn: "123.456"},
		{Namespace: strings.Repeat("n", 300), Channel: strings.Repeat("c", 70000), Payload: nil},
	} {
		origin, got, err := decodePublication(string(encodePublication("node-1", p)))
		if err != nil {
			t.Fatal(err)
		}
		if origin != "node-1" || got.Namespace != p.Namespace || got.Channel != p.Channel || got.ExcludeConn != p.ExcludeConn ||
			got.Binary != p.Binary || !bytes.Equal(got.Payload, p.Payload) {
			t.Fatalf("round trip of %+v gave %q %+v", p, origin, got)
		}
	}
}

// knownBadPublications are inputs a decoder must refuse without panicking.
var knownBadPublications = []string{
	"",
	"\x01",
	"\x02\x00\x00\x00\x00\x00", // unknown version
	"\x01\x02\x00\x00\x00\x00", // unknown flag
	"\x01\x00\x05ab",           // origin longer than the message
	"\x01\x00\x00\x00\x00",     // exclude missing
	"\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // varint overflow
	"\x01\x00\x80", // truncated varint
}

func TestDecodeRefusesBadPublications(t *testing.T) {
	for _, s := range knownBadPublications {
		if _, _, err := decodePublication(s); err == nil {
			t.Errorf("decoded %q", s)
		}
	}
}

func TestControlRoundTrip(t *testing.T) {
	c := control{kind: ctlKick, origin: "a", target: "b", namespace: "dcl", a: "conn", b: "0xabc"}
	got, err := decodeControl(string(encodeControl(c)))
	if err != nil || got != c {
		t.Fatalf("round trip %+v gave %+v %v", c, got, err)
	}
	for _, s := range []string{"", "\x01\x09\x00\x00\x00\x00\x00", "\x01\x01\x00\x00\x00\x00", "\x01\x01\x00\x00\x00\x00\x00extra"} {
		if _, err := decodeControl(s); err == nil {
			t.Errorf("decoded control %q", s)
		}
	}
}

func TestIndexMemberRoundTrip(t *testing.T) {
	for _, parts := range [][]string{{"app", "news"}, {"dcl:room", "a:b", "u\x00ser"}, {"", ""}, {"12:x", "3:"}} {
		got, err := splitMember(indexMember(parts...), len(parts))
		if err != nil || strings.Join(got, "|") != strings.Join(parts, "|") {
			t.Fatalf("%q: got %q %v", parts, got, err)
		}
	}
	for _, bad := range []string{"", "x", "5:ab", "-1:a", ":a"} {
		if _, err := splitMember(bad, 2); err == nil {
			t.Errorf("split %q", bad)
		}
	}
	// Distinct (namespace, channel) pairs never share a key.
	k := keys{prefix: "sb:"}
	if k.occupancy("dcl:room", "x") == k.occupancy("dcl", "room:x") {
		t.Fatal("keys collide across the namespace/channel split")
	}
}

func FuzzDecodePublication(f *testing.F) {
	for _, s := range knownBadPublications {
		f.Add(s)
	}
	f.Add(string(encodePublication("n", engine.Publication{Namespace: "a", Channel: "b", Payload: []byte("x"), Binary: true, ExcludeConn: "c"})))
	f.Fuzz(func(t *testing.T, s string) {
		origin, p, err := decodePublication(s)
		if err != nil {
			return
		}
		again := string(encodePublication(origin, p))
		if again != s {
			t.Fatalf("re-encoding %q gave %q", s, again)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add("")
	f.Add("\x01\x01\x00\x00\x00\x00")
	f.Add(string(encodeControl(control{kind: ctlTerminate, origin: "n", namespace: "app", a: "u"})))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeControl(s)
		if err != nil {
			return
		}
		if again := string(encodeControl(c)); again != s {
			t.Fatalf("re-encoding %q gave %q", s, again)
		}
	})
}

func FuzzSplitMember(f *testing.F) {
	f.Add("3:app4:newsbob")
	f.Add("99:x")
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := splitMember(s, 3)
		if err != nil {
			return
		}
		if again := indexMember(parts...); again != s {
			t.Fatalf("re-joining %q gave %q", s, again)
		}
	})
}

// go test -run '^$' -bench Envelope -benchmem ./internal/engine/redis/
func BenchmarkEnvelopeEncode(b *testing.B) {
	p := engine.Publication{Namespace: "app-1", Channel: "private-chat-42", ExcludeConn: "1234.5678", Payload: bytes.Repeat([]byte("x"), 200)}
	b.ReportAllocs()
	for b.Loop() {
		_ = encodePublication("node-a-0123456789ab", p)
	}
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	p := engine.Publication{Namespace: "app-1", Channel: "private-chat-42", ExcludeConn: "1234.5678", Payload: bytes.Repeat([]byte("x"), 200)}
	s := string(encodePublication("node-a-0123456789ab", p))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodePublication(s); err != nil {
			b.Fatal(err)
		}
	}
}
