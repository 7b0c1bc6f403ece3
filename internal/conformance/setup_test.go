package conformance

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// serverAddr is the one server every test in the package talks to: the
// embedded default configuration on an ephemeral loopback port, with
// permessage-deflate on (for the 12.x and 13.x cases) and the Damon raw TCP
// listener off (its default port is fixed).
var serverAddr string

func TestMain(m *testing.M) {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Shutdown.Timeout = config.Duration(3 * time.Second)
	cfg.WebSocket.Compression = true
	off := false
	cfg.Damon.TCP = &off
	// Hundreds of cases open connections from one address: no per-address
	// connection rate limit here (it is tested in internal/server).
	zero := 0.0
	cfg.Limits.ConnectionRate.PerSecond = &zero
	// Talo's SQLite file goes to a temporary directory, not the source tree.
	taloDir, err := os.MkdirTemp("", "conformance-talo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg.Talo.StorePath = filepath.Join(taloDir, "talo.db")
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	addr, err := srv.Listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverAddr = addr.String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	code := m.Run()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "server shutdown hung")
		code = 1
	}
	_ = os.RemoveAll(taloDir)
	os.Exit(code)
}

// endpoint is one WebSocket path of the server. app is nil where the first
// message must be a protocol handshake (Decentraland ws-room): there only
// cases about framing, control frames and closing apply, since they are
// decided before any message reaches the protocol.
type endpoint struct {
	name string
	path string
	app  *appProtocol
}

// appProtocol makes messages the endpoint's protocol answers, so a case can
// check that a message arrived whole: the server has no echo endpoint.
type appProtocol struct {
	// carrying wraps a valid UTF-8 text in a request that gets a reply.
	carrying func(text string) []byte
	// padded is a request of exactly n bytes (n >= minPadded).
	padded    func(n int) []byte
	minPadded int
	// maxMessage is the largest message the protocol accepts.
	maxMessage int
	isReply    func(p []byte) bool
}

var endpoints = []endpoint{
	{name: "pusher", path: "/app/app-key?protocol=7", app: &appProtocol{
		carrying: func(text string) []byte {
			s, _ := json.Marshal(text)
			return []byte(`{"event":"pusher:ping","data":` + string(s) + `}`)
		},
		padded: func(n int) []byte {
			const head = `{"event":"pusher:ping","data":{}`
			return []byte(head + strings.Repeat(" ", n-len(head)-1) + "}")
		},
		minPadded:  len(`{"event":"pusher:ping","data":{}}`),
		maxMessage: 64 << 10,
		isReply:    func(p []byte) bool { return bytes.Contains(p, []byte(`"event":"pusher:pong"`)) },
	}},
	{name: "damon", path: "/damon", app: &appProtocol{
		carrying: func(text string) []byte {
			s, _ := json.Marshal(text)
			return []byte(`{"op":3,"data":` + string(s) + `}`)
		},
		padded:     func(n int) []byte { return []byte(`{"op":3` + strings.Repeat(" ", n-8) + "}") },
		minPadded:  len(`{"op":3}`),
		maxMessage: 32 << 10, // Damon's document limit (the reference's 32 KiB)
		isReply:    func(p []byte) bool { return string(p) == `{"op":4}` },
	}},
	{name: "dcl", path: "/rooms/conformance"},
}

// wsCase is one test case; autobahn names the Autobahn|Testsuite case
// numbers it mirrors.
type wsCase struct {
	autobahn string
	name     string
	needsApp bool // skipped where the first message must be a protocol handshake
	run      func(c *conn)
}

// runCases runs every case against every endpoint, endpoints in parallel.
func runCases(t *testing.T, cases []wsCase) {
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.autobahn+" "+tc.name, func(t *testing.T) {
					if tc.needsApp && ep.app == nil {
						t.Skip("needs a protocol message; the first message here must be the ws-room handshake")
					}
					tc.run(dial(t, ep, ""))
				})
			}
		})
	}
}

// conn is a test's client connection to one endpoint.
type conn struct {
	t  *testing.T
	ep endpoint
	*Client
	deflate bool // permessage-deflate was negotiated
}

func dial(t *testing.T, ep endpoint, extra string) *conn {
	t.Helper()
	c, err := Dial(serverAddr, ep.path, extra)
	if err != nil {
		t.Fatalf("%s: %v", ep.path, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ext := c.Response.Header.Get("Sec-WebSocket-Extensions")
	return &conn{t: t, ep: ep, Client: c, deflate: strings.Contains(ext, "permessage-deflate")}
}

func (c *conn) send(fs ...Frame) {
	c.t.Helper()
	if err := c.WriteFrames(fs...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *conn) sendChunked(n int, fs ...Frame) {
	c.t.Helper()
	var b []byte
	for _, f := range fs {
		b = AppendFrame(b, f)
	}
	if err := c.WriteChunked(b, n); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the next server frame and checks what RFC 6455 requires of
// every server frame: no mask, no reserved bits but a negotiated RSV1 on a
// data frame, control frames whole and short, text valid UTF-8 (after
// inflating). A compressed payload is returned inflated.
func (c *conn) next() (Frame, error) {
	c.t.Helper()
	f, err := c.ReadFrame(time.Now().Add(5 * time.Second))
	if err != nil {
		return f, err
	}
	if f.Masked {
		c.t.Fatalf("server frame (op %d) is masked", f.Op)
	}
	control := f.Op >= OpClose
	switch {
	case control && (!f.Fin || len(f.Payload) > 125 || f.Rsv != 0):
		c.t.Fatalf("bad control frame from the server: fin %v rsv %d, %d bytes", f.Fin, f.Rsv, len(f.Payload))
	case f.Rsv&^4 != 0 || (f.Rsv&4 != 0 && !c.deflate):
		c.t.Fatalf("server frame with reserved bits %03b", f.Rsv)
	case f.Op > OpBinary && !control:
		c.t.Fatalf("server frame with reserved opcode %d", f.Op)
	}
	if f.Rsv&4 != 0 {
		f.Payload = inflate(c.t, f.Payload)
		f.Rsv = 0
	}
	if f.Op == OpText && f.Fin && !utf8.Valid(f.Payload) {
		c.t.Fatalf("server text frame is not valid UTF-8: %q", f.Payload)
	}
	return f, nil
}

var pingSeq atomic.Int64

// expectAlive checks the connection still works and has processed what
// was sent before: a ping is answered, in order, by its pong.
func (c *conn) expectAlive() {
	c.t.Helper()
	p := []byte(fmt.Sprint("alive ", pingSeq.Add(1)))
	c.send(Frame{Fin: true, Op: OpPing, Payload: p})
	c.expectPong(p)
}

// expectPong reads until the pong carrying p. Data frames (protocol
// messages, answers to what the case sent) are skipped; so are pongs to
// earlier pings, which RFC 6455 section 5.5.3 lets a server leave out.
func (c *conn) expectPong(p []byte) {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for the pong to %q: %v", p, err)
		}
		switch f.Op {
		case OpClose:
			c.t.Fatalf("closed (%s) while a pong to %q was due", closeText(f.Payload), p)
		case OpPong:
			if bytes.Equal(f.Payload, p) {
				return
			}
		}
	}
}

// expectReply reads until the protocol's reply to a request (skipping other
// data frames, such as a Pusher error for an earlier message).
func (c *conn) expectReply() {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for the %s reply: %v", c.ep.name, err)
		}
		if f.Op == OpClose {
			c.t.Fatalf("closed (%s) while a reply was due", closeText(f.Payload))
		}
		if (f.Op == OpText || f.Op == OpBinary) && c.ep.app.isReply(f.Payload) {
			return
		}
	}
}

// expectClose reads until the server's close frame, checks its code is one
// of codes (0 for an empty close body), answers it, and checks the server
// then ends the TCP connection.
func (c *conn) expectClose(codes ...uint16) {
	c.t.Helper()
	c.awaitClose(codes)
	_ = c.WriteFrames(Frame{Fin: true, Op: OpClose})
	c.expectEOF()
}

// expectCloseEcho is expectClose after the client sent its own close: the
// server's close frame completes the handshake, no answer is due.
func (c *conn) expectCloseEcho(codes ...uint16) {
	c.t.Helper()
	c.awaitClose(codes)
	c.expectEOF()
}

func (c *conn) awaitClose(codes []uint16) {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for a close frame %v: %v", codes, err)
		}
		if f.Op != OpClose {
			continue
		}
		code := uint16(0)
		if len(f.Payload) >= 2 {
			code = binary.BigEndian.Uint16(f.Payload)
		}
		for _, want := range codes {
			if code == want {
				return
			}
		}
		c.t.Fatalf("close %s, want code %v", closeText(f.Payload), codes)
	}
}

// expectEOF checks the server ends the TCP connection, with no frame after
// its close frame. A timeout is a failure, not silence.
func (c *conn) expectEOF() {
	c.t.Helper()
	f, err := c.ReadFrame(time.Now().Add(5 * time.Second))
	if err == nil {
		c.t.Fatalf("frame (op %d, %q) after the close handshake", f.Op, f.Payload)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("after the close handshake: %v, want the server to close the TCP connection", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func closeText(p []byte) string {
	if len(p) < 2 {
		return fmt.Sprintf("with body %q", p)
	}
	return fmt.Sprintf("%d %q", binary.BigEndian.Uint16(p), p[2:])
}

// inflate decodes a server's permessage-deflate payload; the server always
// uses server_no_context_takeover, so each message stands alone.
func inflate(t *testing.T, p []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("server sent a bad compressed payload: %v", err)
	}
	return out
}

// text, binary, cont, ping, pong and closeFrame build single frames.
func text(fin bool, p []byte) Frame { return Frame{Fin: fin, Op: OpText, Payload: p} }
func binFrame(p []byte) Frame       { return Frame{Fin: true, Op: OpBinary, Payload: p} }
func cont(fin bool, p []byte) Frame { return Frame{Fin: fin, Op: OpContinuation, Payload: p} }
func ping(p []byte) Frame           { return Frame{Fin: true, Op: OpPing, Payload: p} }
func pong(p []byte) Frame           { return Frame{Fin: true, Op: OpPong, Payload: p} }
func closeFrame(p []byte) Frame     { return Frame{Fin: true, Op: OpClose, Payload: p} }
func closeCode(code uint16) Frame   { return closeFrame(CloseBody(code, "")) }
func fragments(p []byte, n int) [][]byte {
	var out [][]byte
	for len(p) > n {
		out = append(out, p[:n])
		p = p[n:]
	}
	return append(out, p)
}

// fragmented splits a message into frames of n payload bytes.
func fragmented(op byte, p []byte, n int) []Frame {
	parts := fragments(p, n)
	fs := make([]Frame, len(parts))
	for i, part := range parts {
		fs[i] = Frame{Fin: i == len(parts)-1, Op: OpContinuation, Payload: part}
	}
	fs[0].Op = op
	return fs
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) || isReset(err) }

func deadline() time.Time { return time.Now().Add(5 * time.Second) }
