package transport

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/wstest"
)

// recorder is a Handler that records what a connection receives.
type recorder struct {
	conn   Conn
	mu     sync.Mutex
	msgs   [][]byte
	binary []bool
	closed chan CloseInfo
	echo   bool
}

func (r *recorder) HandleMessage(data []byte, binary bool) {
	r.mu.Lock()
	r.msgs = append(r.msgs, bytes.Clone(data))
	r.binary = append(r.binary, binary)
	r.mu.Unlock()
	if r.echo {
		m := Text(bytes.Clone(data))
		if binary {
			m = Binary(bytes.Clone(data))
		}
		_ = r.conn.Send(m)
	}
}

func (r *recorder) HandleClose(info CloseInfo) { r.closed <- info }

type wsServer struct {
	*httptest.Server
	up    *Upgrader
	conns chan *recorder
}

func newWSServer(t *testing.T, up *Upgrader, echo bool) *wsServer {
	t.Helper()
	if up.Poller != nil && up.ParkAfter == 0 {
		// Park at every chance, so each test crosses park and wake-up.
		up.ParkAfter = time.Nanosecond
	}
	s := &wsServer{up: up, conns: make(chan *recorder, 64)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec *recorder
		_ = up.Upgrade(w, r, nil, func(c Conn) Handler {
			rec = &recorder{conn: c, closed: make(chan CloseInfo, 1), echo: echo}
			return rec
		})
		// Handed over once Upgrade has returned: until then the upgrade
		// itself may hold the writer role (its 101, handshake.go), and a
		// test's first Send would be queued instead of written inline.
		if rec != nil {
			s.conns <- rec
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// rawClient is a deliberately low-level client so tests can send frames a
// real library would refuse to produce.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, url string, header string) (*rawClient, *http.Response) {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + header + "\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	return &rawClient{t: t, nc: nc, br: br}, resp
}

func (c *rawClient) writeFrame(f ws.Frame) {
	c.t.Helper()
	if err := ws.WriteFrame(c.nc, ws.MaskFrame(f)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) readFrame() ws.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := wstest.ReadFrame(c.br, wstest.MaxFrame)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// expectClose reads until a close frame and checks its code, then checks
// the server drops the TCP connection.
func (c *rawClient) expectClose(code uint16) {
	c.t.Helper()
	for {
		f := c.readFrame()
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		got := uint16(0)
		if len(f.Payload) >= 2 {
			got = binary.BigEndian.Uint16(f.Payload)
		}
		if got != code {
			c.t.Fatalf("close code %d (%q), want %d", got, f.Payload, code)
		}
		c.writeFrame(ws.NewCloseFrame(f.Payload[:min(2, len(f.Payload))]))
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
			c.t.Fatalf("after close: %v, want EOF", err)
		}
		return
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, true)
		c, _ := dialRaw(t, s.URL, "")
		c.writeFrame(ws.NewTextFrame([]byte("héllo")))
		if f := c.readFrame(); f.Header.OpCode != ws.OpText || string(f.Payload) != "héllo" {
			t.Fatalf("got %v %q", f.Header.OpCode, f.Payload)
		}
		c.writeFrame(ws.NewBinaryFrame([]byte{0, 1, 2, 0xff}))
		if f := c.readFrame(); f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, []byte{0, 1, 2, 0xff}) {
			t.Fatalf("got %v %v", f.Header.OpCode, f.Payload)
		}
	})
}

func TestFragmentedMessageIsReassembled(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, true)
		c, _ := dialRaw(t, s.URL, "")
		c.writeFrame(ws.NewFrame(ws.OpText, false, []byte("ab")))
		c.writeFrame(ws.NewPingFrame([]byte("p"))) // control frames may interleave
		c.writeFrame(ws.NewFrame(ws.OpContinuation, false, []byte("cd")))
		c.writeFrame(ws.NewFrame(ws.OpContinuation, true, []byte("ef")))
		if f := c.readFrame(); f.Header.OpCode != ws.OpPong || string(f.Payload) != "p" {
			t.Fatalf("want pong p, got %v %q", f.Header.OpCode, f.Payload)
		}
		if f := c.readFrame(); string(f.Payload) != "abcdef" {
			t.Fatalf("got %q", f.Payload)
		}
	})
}

func TestViolationsCloseWithTheRFCCode(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		cases := []struct {
			name  string
			send  func(c *rawClient)
			code  uint16
			limit int
		}{
			{"unmasked frame", func(c *rawClient) {
				_ = ws.WriteFrame(c.nc, ws.NewTextFrame([]byte("x")))
			}, 1002, 0},
			{"invalid utf-8", func(c *rawClient) { c.writeFrame(ws.NewTextFrame([]byte{0xc3, 0x28})) }, 1007, 0},
			{"utf-8 split over fragments is fine only when whole", func(c *rawClient) {
				c.writeFrame(ws.NewFrame(ws.OpText, false, []byte{0xe2, 0x82}))
				c.writeFrame(ws.NewFrame(ws.OpContinuation, true, []byte{0x28}))
			}, 1007, 0},
			{"reserved opcode", func(c *rawClient) { c.writeFrame(ws.NewFrame(ws.OpCode(0x3), true, nil)) }, 1002, 0},
			{"reserved control opcode", func(c *rawClient) { c.writeFrame(ws.NewFrame(ws.OpCode(0xB), true, nil)) }, 1002, 0},
			{"rsv1 without deflate", func(c *rawClient) {
				f := ws.NewTextFrame([]byte("x"))
				f.Header.Rsv = ws.Rsv(true, false, false)
				c.writeFrame(f)
			}, 1002, 0},
			{"continuation without start", func(c *rawClient) {
				c.writeFrame(ws.NewFrame(ws.OpContinuation, true, []byte("x")))
			}, 1002, 0},
			{"new message inside a fragmented one", func(c *rawClient) {
				c.writeFrame(ws.NewFrame(ws.OpText, false, []byte("a")))
				c.writeFrame(ws.NewTextFrame([]byte("b")))
			}, 1002, 0},
			{"fragmented ping", func(c *rawClient) { c.writeFrame(ws.NewFrame(ws.OpPing, false, nil)) }, 1002, 0},
			{"oversize ping", func(c *rawClient) { c.writeFrame(ws.NewPingFrame(make([]byte, 126))) }, 1002, 0},
			{"close with one byte", func(c *rawClient) { c.writeFrame(ws.NewCloseFrame([]byte{3})) }, 1002, 0},
			{"close with reserved code 1005", func(c *rawClient) {
				c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1005, "")))
			}, 1002, 0},
			{"close with code 2999", func(c *rawClient) {
				c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(2999, "")))
			}, 1002, 0},
			{"close reason not utf-8", func(c *rawClient) {
				c.writeFrame(ws.NewCloseFrame(append([]byte{0x03, 0xe8}, 0xff)))
			}, 1007, 0},
			{"message over the limit", func(c *rawClient) { c.writeFrame(ws.NewTextFrame(make([]byte, 101))) }, 1009, 100},
			{"fragments over the limit", func(c *rawClient) {
				c.writeFrame(ws.NewFrame(ws.OpText, false, make([]byte, 60)))
				c.writeFrame(ws.NewFrame(ws.OpContinuation, true, make([]byte, 60)))
			}, 1009, 100},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newWSServer(t, &Upgrader{Poller: poller, Options: Options{MaxMessageBytes: tc.limit}}, false)
				c, _ := dialRaw(t, s.URL, "")
				rec := <-s.conns
				tc.send(c)
				c.expectClose(tc.code)
				select {
				case info := <-rec.closed:
					if info.Code != tc.code || !info.ByServer {
						t.Fatalf("server CloseInfo %+v", info)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("handler never saw the close")
				}
				if len(rec.msgs) != 0 {
					t.Fatalf("handler got messages from a bad frame: %q", rec.msgs)
				}
			})
		}
	})
}

// TestFrameLengthWithTheTopBitSetClosesWith1002: RFC 6455 section 5.2
// requires the most significant bit of a 64-bit length to be 0; the server
// must fail the connection with a 1002 close frame, not just drop it.
func TestFrameLengthWithTheTopBitSetClosesWith1002(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, false)
		c, _ := dialRaw(t, s.URL, "")
		rec := <-s.conns
		if _, err := c.nc.Write([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 'x'}); err != nil {
			t.Fatal(err)
		}
		f := c.readFrame()
		if f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || binary.BigEndian.Uint16(f.Payload) != 1002 {
			t.Fatalf("got %v %q, want a 1002 close frame", f.Header.OpCode, f.Payload)
		}
		// The server cannot find a close frame behind a frame of unknown
		// length; it waits for the peer to end the stream.
		_ = c.nc.(*net.TCPConn).CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after close: %v, want EOF", err)
		}
		info := <-rec.closed
		if info.Code != 1002 || !info.ByServer || !errors.Is(info.Err, ErrProtocol) {
			t.Fatalf("CloseInfo %+v", info)
		}
		if len(rec.msgs) != 0 {
			t.Fatalf("handler got %q", rec.msgs)
		}
	})
}

func TestClientInitiatedCloseIsEchoed(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, false)
		c, _ := dialRaw(t, s.URL, "")
		rec := <-s.conns
		c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye")))
		f := c.readFrame()
		if f.Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(f.Payload) != 4000 {
			t.Fatalf("echo %v %v", f.Header.OpCode, f.Payload)
		}
		info := <-rec.closed
		if info.Code != 4000 || info.Reason != "bye" || info.ByServer || info.Err != nil {
			t.Fatalf("CloseInfo %+v", info)
		}
	})
}

func TestServerCloseSendsCodeAfterQueuedData(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, false)
		c, _ := dialRaw(t, s.URL, "")
		rec := <-s.conns
		_ = rec.conn.Send(Text([]byte("last words")))
		rec.conn.Close(4009, "go away")
		if err := rec.conn.Send(Text([]byte("too late"))); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after Close: %v", err)
		}
		if f := c.readFrame(); string(f.Payload) != "last words" {
			t.Fatalf("got %q", f.Payload)
		}
		c.expectClose(4009)
		if info := <-rec.closed; info.Code != 4009 || !info.ByServer {
			t.Fatalf("CloseInfo %+v", info)
		}
	})
}

func TestServerCloseWithoutReplyTimesOut(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller, Options: Options{CloseTimeout: 100 * time.Millisecond}}, false)
		c, _ := dialRaw(t, s.URL, "")
		rec := <-s.conns
		rec.conn.Close(1000, "")
		if f := c.readFrame(); f.Header.OpCode != ws.OpClose {
			t.Fatalf("got %v", f.Header.OpCode)
		}
		select {
		case info := <-rec.closed:
			if info.Code != 1000 {
				t.Fatalf("CloseInfo %+v", info)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server kept a connection whose peer never answered the close")
		}
	})
}

func TestEarlyFramesAfterHandshakeAreRead(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, true)
		addr := strings.TrimPrefix(s.URL, "http://")
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = nc.Close() }()
		var buf bytes.Buffer
		buf.WriteString("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		_ = ws.WriteFrame(&buf, ws.MaskFrame(ws.NewTextFrame([]byte("early"))))
		if _, err := nc.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		c := &rawClient{t: t, nc: nc, br: br}
		if f := c.readFrame(); string(f.Payload) != "early" {
			t.Fatalf("got %q", f.Payload)
		}
	})
}

func TestPermessageDeflate(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller, Compression: true}, true)
		c, resp := dialRaw(t, s.URL, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if !strings.Contains(ext, "permessage-deflate") || !strings.Contains(ext, "server_no_context_takeover") {
			t.Fatalf("extension answer %q", ext)
		}
		payload := bytes.Repeat([]byte("switchboard "), 40)
		// Two compressed messages with context takeover: the second refers
		// back into the first, so the server must keep the window.
		var zbuf bytes.Buffer
		zw, _ := flate.NewWriter(&zbuf, flate.BestCompression)
		for i := 0; i < 2; i++ {
			start := zbuf.Len()
			_, _ = zw.Write(payload)
			_ = zw.Flush()
			body := bytes.TrimSuffix(bytes.Clone(zbuf.Bytes()[start:]), deflateTail)
			f := ws.NewTextFrame(body)
			f.Header.Rsv = ws.Rsv(true, false, false)
			c.writeFrame(f)
			got := c.readFrame()
			if !got.Header.Rsv1() {
				t.Fatal("echo of a 480-byte message was not compressed")
			}
			plain, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(got.Payload), bytes.NewReader(deflateTail))))
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, payload) {
				t.Fatalf("message %d: round trip mismatch", i)
			}
		}
	})
}

func TestDeflateBombIsRefused(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller, Compression: true, Options: Options{MaxMessageBytes: 1000}}, true)
		c, _ := dialRaw(t, s.URL, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
		var zbuf bytes.Buffer
		zw, _ := flate.NewWriter(&zbuf, flate.BestCompression)
		_, _ = zw.Write(make([]byte, 1<<20))
		_ = zw.Flush()
		f := ws.NewTextFrame(bytes.TrimSuffix(zbuf.Bytes(), deflateTail))
		f.Header.Rsv = ws.Rsv(true, false, false)
		c.writeFrame(f)
		c.expectClose(1009)
	})
}

// compressMessage returns the permessage-deflate body of p (RFC 7692
// section 7.2.1: one flushed block, the trailing empty block removed).
func compressMessage(t testing.TB, p []byte) []byte {
	t.Helper()
	var zbuf bytes.Buffer
	zw, err := flate.NewWriter(&zbuf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = zw.Write(p)
	_ = zw.Flush()
	return bytes.TrimSuffix(zbuf.Bytes(), deflateTail)
}

// TestTruncatedDeflateMessageIsRefused: a compressed message cut short
// inflates to a prefix and an unexpected EOF. The handler must not get
// that prefix; the connection closes with 1007 (issue 14).
func TestTruncatedDeflateMessageIsRefused(t *testing.T) {
	var text []byte
	for i := 0; len(text) < 2000; i++ {
		text = fmt.Appendf(text, "message %d for channel presence-%d; ", i, i*i)
	}
	body := compressMessage(t, text)
	for _, cut := range []int{1, len(body) / 2, len(body) - 1} {
		t.Run(fmt.Sprint("cut at ", cut, " of ", len(body)), func(t *testing.T) {
			s := newWSServer(t, &Upgrader{Compression: true}, false)
			c, _ := dialRaw(t, s.URL, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
			rec := <-s.conns
			f := ws.NewTextFrame(bytes.Clone(body[:cut]))
			f.Header.Rsv = ws.Rsv(true, false, false)
			c.writeFrame(f)
			c.expectClose(1007)
			if info := <-rec.closed; info.Code != 1007 || !info.ByServer {
				t.Fatalf("CloseInfo %+v", info)
			}
			if len(rec.msgs) != 0 {
				t.Fatalf("handler got %d bytes of a truncated message", len(rec.msgs[0]))
			}
		})
	}
	// The whole body still arrives whole.
	s := newWSServer(t, &Upgrader{Compression: true}, false)
	c, _ := dialRaw(t, s.URL, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	rec := <-s.conns
	f := ws.NewTextFrame(body)
	f.Header.Rsv = ws.Rsv(true, false, false)
	c.writeFrame(f)
	c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))
	<-rec.closed
	if len(rec.msgs) != 1 || !bytes.Equal(rec.msgs[0], text) {
		t.Fatalf("handler got %d messages, want the %d-byte text", len(rec.msgs), len(text))
	}
}

func TestServerPing(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller}, false)
		c, _ := dialRaw(t, s.URL, "")
		rec := <-s.conns
		before := rec.conn.LastRead()
		rec.conn.Ping()
		if f := c.readFrame(); f.Header.OpCode != ws.OpPing {
			t.Fatalf("got %v", f.Header.OpCode)
		}
		time.Sleep(2 * time.Millisecond)
		c.writeFrame(ws.NewPongFrame(nil))
		deadline := time.Now().Add(2 * time.Second)
		for !rec.conn.LastRead().After(before) {
			if time.Now().After(deadline) {
				t.Fatal("pong did not count as activity")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func TestCloseReasonIsAlwaysValidUTF8(t *testing.T) {
	for _, reason := range []string{strings.Repeat("é", 100), "bad \xff byte", strings.Repeat("a", 122) + "é"} {
		m := closeMessage(4001, reason)
		if len(m.Payload) > 125 || !utf8.Valid(m.Payload[2:]) {
			t.Fatalf("reason %q became %q (%d bytes)", reason, m.Payload[2:], len(m.Payload))
		}
	}
}
