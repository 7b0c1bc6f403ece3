package conformance

import (
	"bytes"
	"compress/flate"
	"fmt"
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	cases := []wsCase{
		{autobahn: "9.1.x, 9.2.x", name: "1 MiB message over the limit closes with 1009", run: func(c *conn) {
			c.send(binFrame(make([]byte, 1<<20)))
			c.expectClose(1009)
		}},
		{autobahn: "9.1.6", name: "a 4 GiB length is refused from the header alone", run: func(c *conn) {
			b := AppendHeader(nil, 0x80|OpBinary, 1<<32)
			if err := c.Write(append(b, 1, 2, 3, 4)); err != nil {
				c.t.Fatal(err)
			}
			c.expectCloseNoReply(1009)
		}},
		{autobahn: "— (RFC 6455 5.2)", name: "a 64-bit length with the top bit set closes with 1002", run: func(c *conn) {
			b := AppendHeader(nil, 0x80|OpText, 1<<63|1)
			if err := c.Write(append(b, 1, 2, 3, 4, 'x')); err != nil {
				c.t.Fatal(err)
			}
			c.expectCloseNoReply(1002)
		}},
		{autobahn: "9.3.x, 9.4.x", name: "fragments that together pass the limit close with 1009", run: func(c *conn) {
			chunk := make([]byte, 16<<10)
			fs := []Frame{{Op: OpBinary, Payload: chunk}}
			for range 63 {
				fs = append(fs, cont(false, chunk))
			}
			c.send(append(fs, cont(true, chunk))...)
			c.expectClose(1009)
		}},
		{autobahn: "9.7.x, 9.8.x", name: "100 requests in one write get 100 replies in order", needsApp: true, run: func(c *conn) {
			var fs []Frame
			for range 100 {
				fs = append(fs, text(true, c.ep.app.padded(c.ep.app.minPadded)))
			}
			c.send(fs...)
			for range 100 {
				c.expectReply()
			}
			c.expectAlive()
		}},
	}
	for i, frag := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10} {
		for j, op := range []byte{OpText, OpBinary} {
			cases = append(cases, wsCase{autobahn: fmt.Sprintf("9.%d.%d", 3+j, i+1), name: fmt.Sprintf("max-size %s message in %d-byte fragments", opName(op), frag), needsApp: true, run: func(c *conn) {
				c.exchange(op, c.ep.app.maxMessage, frag, 0)
			}})
		}
	}
	for i, chunk := range []int{64, 4 << 10} {
		cases = append(cases, wsCase{autobahn: fmt.Sprintf("9.5.%d, 9.6.%d", i+1, i+1), name: fmt.Sprintf("max-size message written in %d-byte chunks", chunk), needsApp: true, run: func(c *conn) {
			c.exchange(OpText, c.ep.app.maxMessage, 0, chunk)
		}})
	}
	runCases(t, cases)
}

// expectCloseNoReply: after a frame whose end cannot be found, the server
// sends its close and waits for the client to end the stream (its answer
// would be read as payload).
func (c *conn) expectCloseNoReply(code uint16) {
	c.t.Helper()
	c.awaitClose([]uint16{code})
	_ = c.CloseWrite()
	c.expectEOF()
}

// compressor is a client's permessage-deflate sender (RFC 7692 7.2.1).
type compressor struct {
	buf bytes.Buffer
	w   *flate.Writer
	// fresh: a new window per message (client_no_context_takeover).
	fresh bool
}

func newCompressor(fresh bool) *compressor {
	z := &compressor{fresh: fresh}
	z.w, _ = flate.NewWriter(&z.buf, flate.BestCompression)
	return z
}

func (z *compressor) compress(p []byte) []byte {
	z.buf.Reset()
	if z.fresh {
		z.w.Reset(&z.buf)
	}
	_, _ = z.w.Write(p)
	_ = z.w.Flush()
	return bytes.Clone(bytes.TrimSuffix(z.buf.Bytes(), []byte{0, 0, 0xff, 0xff}))
}

const offerDeflate = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

// dialDeflate connects offering permessage-deflate; where the endpoint does
// not negotiate it, the handshake must still succeed without the extension
// and the case is skipped.
func dialDeflate(t *testing.T, ep endpoint, offer string) *conn {
	t.Helper()
	c := dial(t, ep, offer)
	if !c.deflate {
		if ext := c.Response.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Fatalf("extension answer %q without permessage-deflate", ext)
		}
		t.Skipf("%s does not negotiate permessage-deflate", ep.name)
	}
	return c
}

func TestPermessageDeflate(t *testing.T) {
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			deflateCases(t, ep)
		})
	}
}

func deflateCases(t *testing.T, ep endpoint) {
	compressed := func(op byte, body []byte) Frame { return Frame{Fin: true, Rsv: 4, Op: op, Payload: body} }
	for i, size := range []int{0, 16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 32 << 10, 64 << 10} {
		for _, fresh := range []bool{false, true} {
			name := fmt.Sprintf("12.%d.x: 10 compressed %d-byte requests, context takeover %v", i+1, size, !fresh)
			t.Run(name, func(t *testing.T) {
				if ep.app == nil {
					t.Skip("needs protocol messages")
				}
				offer := offerDeflate
				if fresh {
					offer = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
				}
				c := dialDeflate(t, ep, offer)
				if fresh && !strings.Contains(c.Response.Header.Get("Sec-WebSocket-Extensions"), "client_no_context_takeover") {
					t.Fatalf("client_no_context_takeover not confirmed: %q", c.Response.Header.Get("Sec-WebSocket-Extensions"))
				}
				n := max(size, ep.app.minPadded)
				if n > ep.app.maxMessage {
					t.Skipf("over %s's %d-byte message limit", ep.name, ep.app.maxMessage)
				}
				z := newCompressor(fresh)
				var fs []Frame
				for range 10 {
					fs = append(fs, compressed(OpText, z.compress(ep.app.padded(n))))
				}
				c.send(fs...)
				for range 10 {
					c.expectReply()
				}
			})
		}
	}
	t.Run("12.x: compressed request in fragments", func(t *testing.T) {
		if ep.app == nil {
			t.Skip("needs protocol messages")
		}
		c := dialDeflate(t, ep, offerDeflate)
		body := newCompressor(false).compress(ep.app.padded(4 << 10))
		fs := fragmented(OpText, body, 7)
		fs[0].Rsv = 4 // RSV1 on the first frame only (RFC 7692 section 6.1)
		c.send(fs...)
		c.expectReply()
	})
	t.Run("12.x: the server's long replies are compressed and valid", func(t *testing.T) {
		if ep.name != "pusher" {
			t.Skip("only Pusher answers a request with a reply of 64 bytes or more")
		}
		c := dialDeflate(t, ep, offerDeflate)
		c.send(compressed(OpText, newCompressor(false).compress([]byte(`{"event":"no-such-event","data":{}}`))))
		for {
			f, err := c.ReadFrame(deadline())
			if err != nil {
				t.Fatal(err)
			}
			if f.Op == OpText && f.Rsv == 4 {
				if p := inflate(t, f.Payload); bytes.Contains(p, []byte("pusher:error")) {
					return // connection_established may come compressed first
				}
			}
			if f.Op == OpClose {
				t.Fatalf("closed: %s", closeText(f.Payload))
			}
		}
	})
	for _, o := range []struct{ autobahn, offer, want string }{
		{"13.1.x", "permessage-deflate", "permessage-deflate"},
		{"13.3.x", "permessage-deflate; server_no_context_takeover", "server_no_context_takeover"},
		{"13.4.x", "permessage-deflate; server_max_window_bits=15", "permessage-deflate"},
		{"13.5.x", "permessage-deflate; client_max_window_bits=9", "permessage-deflate"},
		{"13.6.x", "permessage-deflate; server_max_window_bits=9, permessage-deflate", "permessage-deflate"},
	} {
		t.Run(o.autobahn+": offer "+o.offer, func(t *testing.T) {
			c := dialDeflate(t, ep, "Sec-WebSocket-Extensions: "+o.offer+"\r\n")
			if ext := c.Response.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, o.want) || strings.Contains(ext, "server_max_window_bits=9") {
				t.Fatalf("answer %q to offer %q", ext, o.offer)
			}
			c.expectAlive()
		})
	}
	t.Run("13.x: server_max_window_bits=9 alone is declined", func(t *testing.T) {
		c := dial(t, ep, "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n")
		if c.deflate {
			t.Fatalf("accepted a window the server cannot keep: %q", c.Response.Header.Get("Sec-WebSocket-Extensions"))
		}
		c.expectAlive()
	})
	t.Run("— (RFC 7692 6.1): RSV1 on a continuation frame closes with 1002", func(t *testing.T) {
		c := dialDeflate(t, ep, offerDeflate)
		body := newCompressor(false).compress([]byte("hello hello hello"))
		c.send(Frame{Rsv: 4, Op: OpText, Payload: body[:2]}, Frame{Fin: true, Rsv: 4, Op: OpContinuation, Payload: body[2:]})
		c.expectClose(1002)
	})
	t.Run("— (RFC 7692 6.1): RSV1 on a ping closes with 1002", func(t *testing.T) {
		c := dialDeflate(t, ep, offerDeflate)
		c.send(Frame{Fin: true, Rsv: 4, Op: OpPing, Payload: []byte{0x02, 0x00}})
		c.expectClose(1002)
	})
	t.Run("— (issue 14): a compressed message cut short closes with 1007", func(t *testing.T) {
		c := dialDeflate(t, ep, offerDeflate)
		var msg []byte
		if ep.app != nil {
			msg = ep.app.carrying(strings.Repeat("switchboard conformance ", 40))
		} else {
			msg = []byte(strings.Repeat("switchboard conformance ", 40))
		}
		body := newCompressor(false).compress(msg)
		c.send(compressed(OpText, body[:len(body)/2]))
		c.expectClose(1007)
	})
	t.Run("— (12.x bomb): a compressed message that inflates past the limit closes with 1009", func(t *testing.T) {
		c := dialDeflate(t, ep, offerDeflate)
		c.send(compressed(OpBinary, newCompressor(false).compress(make([]byte, 4<<20))))
		c.expectClose(1009)
	})
}
