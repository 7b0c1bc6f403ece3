package transport

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"net"
	"strings"
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
		rec, _ := serveFrames(Options{MaxMessageBytes: 256}, false, data)
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

// serveFrames runs a server connection's reader over data sent by a client
// that then closes, and returns what the handler saw. With deflate the
// connection has negotiated permessage-deflate (with context takeover).
func serveFrames(opts Options, deflate bool, data []byte) (*recorder, CloseInfo) {
	opts.CloseTimeout, opts.WriteTimeout = 50*time.Millisecond, time.Second
	up := &Upgrader{Options: opts}
	up.init()
	server, client := net.Pipe()
	c := &wsConn{id: 1, up: up, br: bufio.NewReaderSize(server, 512)}
	c.out.init(server, &up.opts, up.opts.Observer, c)
	if deflate {
		c.deflate = &inflater{contextTakeover: true}
	}
	rec := &recorder{conn: c, closed: make(chan CloseInfo, 1)}
	c.handler = rec
	go func() {
		_ = client.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(data)
		_ = client.Close()
	}()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	c.readLoop()
	return rec, <-rec.closed
}

// FuzzDeflateMessage compresses a text as a permessage-deflate client
// would, cuts the body short at one point and splits it into two fragments
// at another. The handler must get exactly that text or nothing, in which
// case the connection closes with 1007 or 1009 (issue 14: a truncated body
// once inflated to a prefix that reached the handler).
func FuzzDeflateMessage(f *testing.F) {
	const limit = 512
	long := []byte(strings.Repeat("presence-channel member_added ", 30))
	seeds := []struct {
		text       []byte
		level      uint8
		cut, split uint16
	}{
		{[]byte("hello, switchboard"), 0, 0xffff, 0},         // whole, one frame
		{[]byte("hello, switchboard"), 1, 0xffff, 5},         // whole, two fragments
		{[]byte("hello, switchboard"), 1, 5, 0},              // cut short
		{long[:400], 2, 0xffff, 3},                           // whole, compresses well
		{long[:400], 2, 10, 3},                               // cut in the middle
		{long, 1, 0xffff, 0},                                 // over the limit once inflated
		{long[:400], 0, 1, 0},                                // one byte left
		{[]byte{0xe2, 0x82, 0xac, 0xe2, 0x82}, 1, 0xffff, 1}, // not UTF-8
		{[]byte{}, 1, 0xffff, 0},                             // empty message
		{[]byte{}, 1, 0, 0},                                  // cut to nothing
	}
	for _, s := range seeds {
		f.Add(s.text, s.level, s.cut, s.split)
	}
	// One writer per level, reset for each input: a new flate.Writer costs
	// about a megabyte, which would dominate the fuzzer's time.
	var writers []*flate.Writer
	for _, level := range []int{flate.BestSpeed, flate.BestCompression, flate.HuffmanOnly, flate.NoCompression} {
		zw, _ := flate.NewWriter(nil, level)
		writers = append(writers, zw)
	}
	f.Fuzz(func(t *testing.T, text []byte, level uint8, cut, split uint16) {
		if len(text) > 4096 {
			text = text[:4096]
		}
		var zbuf bytes.Buffer
		zw := writers[int(level)%len(writers)]
		zw.Reset(&zbuf)
		_, _ = zw.Write(text)
		_ = zw.Flush()
		body := bytes.TrimSuffix(zbuf.Bytes(), deflateTail)
		truncated := int(cut) < len(body)
		if truncated {
			body = body[:cut]
		}
		at := int(split) % (len(body) + 1)
		data := maskedFrame(0x41, body[:at]) // text, RSV1, FIN clear
		data = append(data, maskedFrame(0x80, body[at:])...)
		data = append(data, maskedFrame(0x88, []byte{0x03, 0xe8})...)

		rec, info := serveFrames(Options{MaxMessageBytes: limit}, true, data)
		switch len(rec.msgs) {
		case 0:
			if info.Code != CloseInvalidPayload && info.Code != CloseTooBig {
				t.Fatalf("nothing delivered and close %+v, want 1007 or 1009", info)
			}
			if !truncated && utf8.Valid(text) && len(text) <= limit && len(body) <= limit {
				t.Fatalf("a whole valid %d-byte message was refused: %+v", len(text), info)
			}
		case 1:
			m := rec.msgs[0]
			// Texts up to 4 KiB compress to one block, so the only cuts
			// that leave a well-formed body are before the block or right
			// after a stored block's header byte: RFC 7692 section 7.2.3.6
			// makes an empty body or a lone 0x00 the empty message, and no
			// receiver can tell that from a cut.
			emptyMessage := truncated && cut <= 1 && len(m) == 0
			if !bytes.Equal(m, text) && !emptyMessage {
				t.Fatalf("handler got %q, want %q (truncated: %v)", m, text, truncated)
			}
			if !utf8.Valid(m) || len(m) > limit {
				t.Fatalf("handler got an invalid or oversize message (%d bytes)", len(m))
			}
		default:
			t.Fatalf("handler got %d messages from one", len(rec.msgs))
		}
	})
}
