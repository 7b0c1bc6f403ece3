package conformance

import (
	"bytes"
	"fmt"
	"testing"
)

// exchange sends an app request of exactly n bytes as op, split into
// frames of frag bytes (0: one frame) and written in chunks of chunk bytes
// (0: one write), then expects the reply. Messages below the protocol's
// smallest request still must not break the connection.
func (c *conn) exchange(op byte, n, frag, chunk int) {
	c.t.Helper()
	var p []byte
	if n >= c.ep.app.minPadded {
		p = c.ep.app.padded(n)
	} else {
		p = bytes.Repeat([]byte{' '}, n)
	}
	if frag <= 0 {
		frag = len(p) + 1
	}
	fs := fragmented(op, p, frag)
	if chunk > 0 {
		c.sendChunked(chunk, fs...)
	} else {
		c.send(fs...)
	}
	if n >= c.ep.app.minPadded {
		c.expectReply()
	}
	c.expectAlive()
}

func TestFraming(t *testing.T) {
	var cases []wsCase
	// 1.1.x text and 1.2.x binary messages across the length encodings.
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		for j, op := range []byte{OpText, OpBinary} {
			cases = append(cases, wsCase{
				autobahn: fmt.Sprintf("1.%d.%d", j+1, i+1), name: fmt.Sprintf("%s message of %d bytes", opName(op), n), needsApp: true,
				run: func(c *conn) {
					if n > c.ep.app.maxMessage {
						c.t.Skipf("over %s's %d-byte message limit", c.ep.name, c.ep.app.maxMessage)
					}
					c.exchange(op, n, 0, 0)
				},
			})
		}
	}
	cases = append(cases,
		wsCase{autobahn: "1.1.8", name: "65535-byte text written in 997-byte chunks", needsApp: true, run: func(c *conn) {
			if c.ep.app.maxMessage < 65535 {
				c.t.Skipf("over %s's %d-byte message limit", c.ep.name, c.ep.app.maxMessage)
			}
			c.exchange(OpText, 65535, 0, 997)
		}},
		wsCase{autobahn: "1.1.8", name: "max-size text written in 997-byte chunks", needsApp: true, run: func(c *conn) {
			c.exchange(OpText, c.ep.app.maxMessage, 0, 997)
		}},

		// 2.x pings and pongs.
		wsCase{autobahn: "2.1", name: "ping without payload", run: func(c *conn) {
			c.send(ping(nil))
			c.expectPong(nil)
		}},
		wsCase{autobahn: "2.2", name: "ping with text payload", run: func(c *conn) {
			c.send(ping([]byte("Hello, world!")))
			c.expectPong([]byte("Hello, world!"))
		}},
		wsCase{autobahn: "2.3", name: "ping with binary payload", run: func(c *conn) {
			p := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
			c.send(ping(p))
			c.expectPong(p)
		}},
		wsCase{autobahn: "2.4", name: "ping with 125-byte payload", run: func(c *conn) {
			p := bytes.Repeat([]byte{0xfe}, 125)
			c.send(ping(p))
			c.expectPong(p)
		}},
		wsCase{autobahn: "2.5", name: "ping with 126-byte payload", run: func(c *conn) {
			c.send(ping(bytes.Repeat([]byte{0xfe}, 126)))
			c.expectClose(1002)
		}},
		wsCase{autobahn: "2.6", name: "ping with 125-byte payload written in 1-byte chunks", run: func(c *conn) {
			p := bytes.Repeat([]byte{0xfe}, 125)
			c.sendChunked(1, ping(p))
			c.expectPong(p)
		}},
		wsCase{autobahn: "2.7", name: "unsolicited pong without payload", run: func(c *conn) {
			c.send(pong(nil))
			c.expectAlive()
		}},
		wsCase{autobahn: "2.8", name: "unsolicited pong with payload", run: func(c *conn) {
			c.send(pong([]byte("unsolicited pong payload")))
			c.expectAlive()
		}},
		wsCase{autobahn: "2.9", name: "unsolicited pong, then ping", run: func(c *conn) {
			c.send(pong([]byte("unsolicited pong payload")), ping([]byte("ping payload")))
			c.expectPong([]byte("ping payload"))
		}},
		wsCase{autobahn: "2.10", name: "10 pings in one write", run: func(c *conn) {
			c.tenPings(0)
		}},
		wsCase{autobahn: "2.11", name: "10 pings in 1-byte chunks", run: func(c *conn) {
			c.tenPings(1)
		}},

		// 3.x reserved bits: none negotiated, so each set bit fails the connection.
		wsCase{autobahn: "3.1", name: "RSV1 on a text frame", run: func(c *conn) {
			c.send(Frame{Fin: true, Rsv: 4, Op: OpText, Payload: []byte("Hello, world!")})
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.2", name: "RSV2 on a text frame after a valid message", needsApp: true, run: func(c *conn) {
			c.send(text(true, c.ep.app.padded(c.ep.app.minPadded)), Frame{Fin: true, Rsv: 2, Op: OpText, Payload: []byte("Hello, world!")})
			c.expectReply()
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.3", name: "RSV1|RSV2 on a text frame, then a ping", run: func(c *conn) {
			c.send(Frame{Fin: true, Rsv: 6, Op: OpText, Payload: []byte("Hello, world!")}, ping(nil))
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.4", name: "RSV3 on a text frame in 1-byte chunks", run: func(c *conn) {
			c.sendChunked(1, Frame{Fin: true, Rsv: 1, Op: OpText, Payload: []byte("Hello, world!")})
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.5", name: "RSV1|RSV3 on a binary frame", run: func(c *conn) {
			c.send(Frame{Fin: true, Rsv: 5, Op: OpBinary, Payload: []byte{0, 0xff, 0xfe}})
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.6", name: "RSV2|RSV3 on a ping", run: func(c *conn) {
			c.send(Frame{Fin: true, Rsv: 3, Op: OpPing, Payload: []byte("Hello, world!")})
			c.expectClose(1002)
		}},
		wsCase{autobahn: "3.7", name: "all RSV bits on a close", run: func(c *conn) {
			c.send(Frame{Fin: true, Rsv: 7, Op: OpClose, Payload: CloseBody(1000, "")})
			c.expectClose(1002)
		}},
	)
	// 4.x reserved opcodes.
	for i, op := range []byte{3, 4, 5, 6, 7} {
		cases = append(cases, wsCase{autobahn: fmt.Sprintf("4.1.%d", i+1), name: fmt.Sprintf("reserved data opcode %d", op), run: func(c *conn) {
			c.send(Frame{Fin: true, Op: op, Payload: []byte("reserved")})
			c.expectClose(1002)
		}})
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		cases = append(cases, wsCase{autobahn: fmt.Sprintf("4.2.%d", i+1), name: fmt.Sprintf("reserved control opcode %d", op), run: func(c *conn) {
			c.send(Frame{Fin: true, Op: op, Payload: []byte("reserved")})
			c.expectClose(1002)
		}})
	}
	cases = append(cases,
		wsCase{autobahn: "4.1.3, 4.2.3", name: "valid message, reserved opcode, ping", needsApp: true, run: func(c *conn) {
			c.send(text(true, c.ep.app.padded(c.ep.app.minPadded)), Frame{Fin: true, Op: 5}, ping(nil))
			c.expectReply()
			c.expectClose(1002)
		}},
	)
	cases = append(cases, fragmentationCases()...)
	runCases(t, cases)
}

// tenPings: RFC 6455 section 5.5.3 lets a server answer only the most
// recent of several pings; the answers that come must be in order and the
// last ping must be answered.
func (c *conn) tenPings(chunk int) {
	c.t.Helper()
	var fs []Frame
	for i := range 10 {
		fs = append(fs, ping([]byte(fmt.Sprint("payload-", i))))
	}
	if chunk > 0 {
		c.sendChunked(chunk, fs...)
	} else {
		c.send(fs...)
	}
	next := 0
	for next < 10 {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("after %d pongs: %v", next, err)
		}
		if f.Op == OpClose {
			c.t.Fatalf("closed: %s", closeText(f.Payload))
		}
		if f.Op != OpPong {
			continue
		}
		i := next
		for i < 10 && string(f.Payload) != fmt.Sprint("payload-", i) {
			i++
		}
		if i == 10 {
			c.t.Fatalf("pong %q is out of order or unknown", f.Payload)
		}
		next = i + 1
	}
}

// fragmentationCases are Autobahn 5.x.
func fragmentationCases() []wsCase {
	hello := func(c *conn) []byte { return c.ep.app.padded(c.ep.app.minPadded + 20) }
	return []wsCase{
		{autobahn: "5.1", name: "ping in 2 fragments", run: func(c *conn) {
			c.send(Frame{Op: OpPing, Payload: []byte("frag1")}, cont(true, []byte("frag2")))
			c.expectClose(1002)
		}},
		{autobahn: "5.2", name: "pong in 2 fragments", run: func(c *conn) {
			c.send(Frame{Op: OpPong, Payload: []byte("frag1")}, cont(true, []byte("frag2")))
			c.expectClose(1002)
		}},
		{autobahn: "5.3", name: "text in 2 fragments", needsApp: true, run: func(c *conn) {
			p := hello(c)
			c.send(text(false, p[:10]), cont(true, p[10:]))
			c.expectReply()
		}},
		{autobahn: "5.4, 5.5", name: "text in 2 fragments, 1-byte chunks", needsApp: true, run: func(c *conn) {
			p := hello(c)
			c.sendChunked(1, text(false, p[:10]), cont(true, p[10:]))
			c.expectReply()
		}},
		{autobahn: "5.6", name: "text in 2 fragments with a ping between", needsApp: true, run: func(c *conn) {
			p := hello(c)
			c.send(text(false, p[:10]), ping([]byte("pongme!")), cont(true, p[10:]))
			c.expectPong([]byte("pongme!"))
			c.expectReply()
		}},
		{autobahn: "5.7, 5.8", name: "text in 2 fragments with a ping between, 1-byte chunks", needsApp: true, run: func(c *conn) {
			p := hello(c)
			c.sendChunked(1, text(false, p[:10]), ping([]byte("pongme!")), cont(true, p[10:]))
			c.expectPong([]byte("pongme!"))
			c.expectReply()
		}},
		{autobahn: "5.9", name: "unstarted continuation (FIN), then a message", run: func(c *conn) {
			c.send(cont(true, []byte("non-continuation payload")), text(true, []byte("Hello, world!")))
			c.expectClose(1002)
		}},
		{autobahn: "5.10, 5.11", name: "unstarted continuation (FIN), 1-byte chunks", run: func(c *conn) {
			c.sendChunked(1, cont(true, []byte("non-continuation payload")), text(true, []byte("Hello, world!")))
			c.expectClose(1002)
		}},
		{autobahn: "5.12", name: "unstarted continuation (no FIN)", run: func(c *conn) {
			c.send(cont(false, []byte("non-continuation payload")), text(true, []byte("Hello, world!")))
			c.expectClose(1002)
		}},
		{autobahn: "5.13, 5.14", name: "unstarted continuation (no FIN), 1-byte chunks", run: func(c *conn) {
			c.sendChunked(1, cont(false, []byte("non-continuation payload")), text(true, []byte("Hello, world!")))
			c.expectClose(1002)
		}},
		{autobahn: "5.15", name: "continuation after a finished fragmented message", needsApp: true, run: func(c *conn) {
			p := hello(c)
			c.send(text(false, p[:10]), cont(true, p[10:]), cont(false, []byte("fragment3")), cont(true, []byte("fragment4")))
			c.expectReply()
			c.expectClose(1002)
		}},
		{autobahn: "5.15", name: "continuation after a finished fragmented message (framing only)", run: func(c *conn) {
			c.send(Frame{Op: OpBinary, Payload: []byte{1}}, cont(true, []byte{2}), cont(true, []byte{3}))
			c.expectCloseAny()
		}},
		{autobahn: "5.16, 5.17", name: "continuation, message, continuation", run: func(c *conn) {
			c.send(cont(false, []byte("fragment1")), text(false, []byte("fragment2")), cont(true, []byte("fragment3")))
			c.expectClose(1002)
		}},
		{autobahn: "5.18", name: "text fragment followed by a new text frame", run: func(c *conn) {
			c.send(text(false, []byte("fragment1")), text(true, []byte("fragment2")))
			c.expectClose(1002)
		}},
		{autobahn: "5.19, 5.20", name: "text in 5 fragments with pings between, written apart", needsApp: true, run: func(c *conn) {
			p := hello(c)
			parts := fragments(p, (len(p)+4)/5)
			for i, part := range parts {
				f := cont(i == len(parts)-1, part)
				if i == 0 {
					f.Op = OpText
				}
				c.send(f)
				if i == 1 || i == 3 {
					pp := []byte(fmt.Sprint("pongme ", i))
					c.send(ping(pp))
					c.expectPong(pp)
				}
			}
			c.expectReply()
		}},
	}
}

// expectCloseAny: the endpoint may close for its own reason first (the
// ws-room closes on a message that is not its handshake); any close will
// do as long as the server does close.
func (c *conn) expectCloseAny() {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			if isReset(err) {
				return
			}
			c.t.Fatalf("waiting for a close frame: %v", err)
		}
		if f.Op == OpClose {
			_ = c.WriteFrames(closeFrame(nil))
			c.expectEOF()
			return
		}
	}
}

func opName(op byte) string {
	if op == OpBinary {
		return "binary"
	}
	return "text"
}
