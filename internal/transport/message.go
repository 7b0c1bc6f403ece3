package transport

import (
	"bytes"
	"compress/flate"
	"sync"
)

// Message is an outbound payload, encoded once and shared by every
// recipient of a broadcast. It must not be modified after the first Send.
type Message struct {
	Payload []byte
	kind    kind
	// queued: never written inline (see Queue).
	queued bool

	// The permessage-deflate form is computed on first use by a connection
	// that negotiated compression, then shared by every such recipient.
	deflateOnce sync.Once
	deflated    []byte
}

type kind uint8

const (
	kindText kind = iota
	kindBinary
	// kindRaw is bytes already framed: the unwritten tail of an inline
	// write (inline.go), written as they are.
	kindRaw
	kindPing
	kindPong
	kindClose
)

// Text returns a message sent as a WebSocket text frame (or raw bytes on a stream).
func Text(p []byte) *Message { return &Message{Payload: p, kind: kindText} }

// Binary returns a message sent as a WebSocket binary frame (or raw bytes on a stream).
func Binary(p []byte) *Message { return &Message{Payload: p, kind: kindBinary} }

// Queue marks m as one of a busy stream: it waits in each recipient's send
// queue for the writer goroutine, which coalesces waiting frames into one
// writev, instead of being written inline by the sender when the queue is
// empty (inline.go). Inline is cheaper per message while a connection is
// quiet; under a steady stream the coalescing is (BenchmarkFanout: batched
// vs unbatched). Call it before the first Send.
func (m *Message) Queue() { m.queued = true }

// Queued reports whether Queue was called.
func (m *Message) Queued() bool { return m.queued }

// IsBinary reports whether m goes out as a binary frame.
func (m *Message) IsBinary() bool { return m.kind == kindBinary }

func (m *Message) control() bool { return m.kind >= kindPing }

// compressed returns the raw DEFLATE body of the payload with the trailing
// empty block removed, as RFC 7692 section 7.2.1 requires. Broadcasts are
// compressed without context takeover, so one result serves every recipient.
func (m *Message) compressed(pool *sync.Pool) []byte {
	m.deflateOnce.Do(func() {
		var buf bytes.Buffer
		buf.Grow(len(m.Payload)/2 + 16)
		fw, _ := pool.Get().(*flate.Writer)
		if fw == nil {
			fw, _ = flate.NewWriter(&buf, flate.BestSpeed)
		} else {
			fw.Reset(&buf)
		}
		_, _ = fw.Write(m.Payload)
		_ = fw.Flush()
		pool.Put(fw)
		out := buf.Bytes()
		// Flush ends with an empty stored block 00 00 ff ff; RFC 7692 drops it.
		if n := len(out); n >= 4 && out[n-4] == 0 && out[n-3] == 0 && out[n-2] == 0xff && out[n-1] == 0xff {
			out = out[:n-4]
		}
		m.deflated = out
	})
	return m.deflated
}
