package transport

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
	"unicode/utf8"
)

// maskedFrame builds a client frame (masked with a zero key, which leaves
// the payload readable in the corpus).
func maskedFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, 0, 0, 0, 0)
	return append(out, payload...)
}

// FuzzReadFrames feeds arbitrary bytes to a server connection's frame
// reader. It must never panic, never hand the handler an invalid text
// message or one over the limit, and always end the connection cleanly.
func FuzzReadFrames(f *testing.F) {
	seeds := [][]byte{
		maskedFrame(0x81, []byte("hello")),
		maskedFrame(0x82, []byte{0, 1, 2}),
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},       // unmasked
		maskedFrame(0x83, nil),                      // reserved opcode
		maskedFrame(0x8B, nil),                      // reserved control opcode
		maskedFrame(0xC1, []byte("x")),              // RSV1 without deflate
		maskedFrame(0x80, []byte("x")),              // continuation without start
		maskedFrame(0x09, nil),                      // fragmented ping
		maskedFrame(0x89, make([]byte, 126)),        // oversize control frame
		maskedFrame(0x88, []byte{3}),                // one-byte close
		maskedFrame(0x88, []byte{0x03, 0xed}),       // close 1005
		maskedFrame(0x88, []byte{0x03, 0xe8, 0xff}), // close reason not UTF-8
		maskedFrame(0x81, []byte{0xc3, 0x28}),       // invalid UTF-8
		append(maskedFrame(0x01, []byte{0xe2, 0x82}), maskedFrame(0x80, []byte{0xac})...), // split UTF-8, valid
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1},                                           // 64-bit length with the high bit set
		{0x81, 0xfe, 0xff},                                                                // truncated extended length
		{0x81},                                                                            // truncated header
		maskedFrame(0x81, make([]byte, 300)),                                              // over the fuzz limit
		append(maskedFrame(0x01, []byte("a")), maskedFrame(0x81, []byte("b"))...), // new message inside a fragmented one
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		up := &Upgrader{Options: Options{MaxMessageBytes: 256, CloseTimeout: 50 * time.Millisecond, WriteTimeout: time.Second}}
		up.init()
		server, client := net.Pipe()
		c := &wsConn{id: 1, nc: server, up: up, obs: up.opts.Observer, br: bufio.NewReaderSize(server, 512)}
		c.out.init(server, &up.opts, up.opts.Observer, c)
		rec := &recorder{conn: c, closed: make(chan CloseInfo, 1)}
		c.handler = rec
		go func() {
			_ = client.SetDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		c.readLoop()
		<-rec.closed
		for i, m := range rec.msgs {
			if len(m) > 256 {
				t.Fatalf("message of %d bytes passed a 256-byte limit", len(m))
			}
			if !rec.binary[i] && !utf8.Valid(m) {
				t.Fatalf("invalid UTF-8 text message reached the handler: %q", m)
			}
		}
	})
}
