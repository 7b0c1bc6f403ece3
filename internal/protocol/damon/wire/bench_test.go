package wire

import (
	"bytes"
	crand "crypto/rand"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// A typical forwarded EVENT (the README's example, ~230 bytes).
const benchEvent = `{"id":"70653cb0-5f6d-41fe-acbf-ea8f37a73034","op":0,"event":"INFO","data":{"channels":10240,"shardId":"ef4d25","users":15042,"requester":"a6022b4c-09b8-4f7b-8fef-c669618c7d58"},"intent":{"target":"GROUP","identifier":"damon"}}`

// benchStream is n copies of benchEvent back to back, as a busy peer's
// Nagle-coalesced writes arrive.
func benchStream(n int) []byte {
	return []byte(strings.Repeat(benchEvent, n))
}

func benchFeed(b *testing.B, stream []byte, readSize int) {
	d := NewDecoder(Limits{})
	docs := 0
	emit := func(f Frame) error {
		docs++
		return nil
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := min(readSize, len(p))
			if err := d.Feed(p[:n], emit); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
	if docs == 0 {
		b.Fatal("no documents")
	}
}

// 64 KiB reads: most documents lie inside one read (zero-copy path).
func BenchmarkDecoder64KiBReads(b *testing.B) { benchFeed(b, benchStream(1000), 64<<10) }

// 1000-byte reads: every fourth document straddles a read (buffered path).
func BenchmarkDecoder1000BReads(b *testing.B) { benchFeed(b, benchStream(1000), 1000) }

// One large document dominated by string content.
func BenchmarkDecoderLargeString(b *testing.B) {
	doc := `{"op":0,"data":"` + strings.Repeat("lorem ipsum dolor sit amet ", 1200) + `","intent":{"target":"GLOBAL"}}`
	benchFeed(b, []byte(doc), 64<<10)
}

// Baseline: encoding/json.Decoder splitting the same stream into RawMessages.
func BenchmarkDecoderBaselineEncodingJSON(b *testing.B) {
	stream := benchStream(1000)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(stream))
		for {
			var m json.RawMessage
			if err := dec.Decode(&m); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	doc := []byte(benchEvent)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEnvelope(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewIDTemplate(b *testing.B) {
	doc := []byte(benchEvent)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewIDTemplate(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCanonical(b *testing.B) {
	doc := []byte(benchEvent)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = AppendCanonical(dst[:0], doc)
	}
}

// Per-recipient cost of an EVENT: copy + 36-byte patch into a reused buffer.
func BenchmarkWithIDReusedBuffer(b *testing.B) {
	tm, _ := NewIDTemplate([]byte(benchEvent))
	var g UUIDGenerator
	id := g.New()
	buf := make([]byte, 0, tm.Len())
	b.ReportAllocs()
	for b.Loop() {
		buf = tm.WithID(buf[:0], id)
	}
}

// Per-recipient cost when each copy gets its own buffer (handed to a
// per-connection write queue), including a fresh uuid.
func BenchmarkWithIDFreshBufferAndUUID(b *testing.B) {
	tm, _ := NewIDTemplate([]byte(benchEvent))
	var g UUIDGenerator
	b.ReportAllocs()
	for b.Loop() {
		_ = tm.WithID(make([]byte, 0, tm.Len()), g.New())
	}
}

func BenchmarkUUIDGenerator(b *testing.B) {
	var g UUIDGenerator
	b.ReportAllocs()
	for b.Loop() {
		_ = g.New()
	}
}

// For comparison with UUIDGenerator: one crypto/rand call per id.
func BenchmarkUUIDCryptoRandPerID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var raw [16]byte
		crand.Read(raw[:])
		raw[6] = raw[6]&0x0F | 0x40
		raw[8] = raw[8]&0x3F | 0x80
		_ = formatUUID(raw)
	}
}

// For comparison with UUIDGenerator: crypto/rand fetched 32 ids at a time.
func BenchmarkUUIDCryptoRandBatched(b *testing.B) {
	var pool [32 * 16]byte
	used := len(pool)
	b.ReportAllocs()
	for b.Loop() {
		if used == len(pool) {
			crand.Read(pool[:])
			used = 0
		}
		var raw [16]byte
		copy(raw[:], pool[used:])
		used += 16
		raw[6] = raw[6]&0x0F | 0x40
		raw[8] = raw[8]&0x3F | 0x80
		_ = formatUUID(raw)
	}
}
