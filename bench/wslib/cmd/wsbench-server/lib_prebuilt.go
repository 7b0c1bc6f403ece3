package main

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// gobwas-prebuilt mode: the design Switchboard intends, with gobwas used only
// for the upgrade and frame-header parsing.
//
//   - Reading: one goroutine per connection reads headers straight from the
//     socket into a 12-byte array inside the conn (no bufio, no allocation
//     per frame). Payload buffers exist only while a message is in flight, so
//     an idle connection is a struct, a socket and a parked goroutine.
//   - Writing: a broadcast frames the message ONCE (header computed once,
//     payload shared) and appends that same []byte to every recipient's
//     queue. A writer goroutine exists only while a queue is non-empty and
//     flushes everything queued so far with one net.Buffers write (writev),
//     so a burst of N messages costs far fewer than N syscalls per client.
//
// Production code would add write deadlines per flush and heartbeats; they
// are left out here as in every other mode.
type prebuiltServer struct {
	h       *hub[*pbConn]
	noBatch bool // diagnostic variant: one write(2) per frame instead of writev
}

type pbConn struct {
	nc  net.Conn
	hdr [ws.MaxHeaderSize - 2]byte // scratch for ws.ReadHeaderBuffer; reader-owned

	mu      sync.Mutex
	queue   [][]byte // frames waiting; shared bytes, never modified
	spare   [][]byte // previous batch, reused by the active writer (double buffer)
	writing bool     // a writer goroutine is running
	closing bool     // close the socket once the queue drains (close handshake)
	dead    bool     // accept no more frames
	noBatch bool     // copied from prebuiltServer
}

const (
	// maxQueuedFrames is the slow-consumer cut-off: a client this far behind
	// is disconnected rather than buffered without bound.
	maxQueuedFrames = 4096
	// keepBatchCap: batch slices up to this capacity are kept between bursts;
	// larger ones are dropped so a past burst does not pin memory on an idle
	// connection.
	keepBatchCap = 16
	// closeFlushTimeout bounds how long a close reply may wait for a client
	// that stopped reading.
	closeFlushTimeout = 5 * time.Second
)

func newPrebuilt() server { return &prebuiltServer{h: newHub[*pbConn]()} }

// newPrebuiltNoBatch is the same design with the writev flush replaced by one
// write(2) per queued frame. It is not a candidate: it exists to split the
// prebuilt mode's fan-out gain into "frame once + queue" and "writev".
func newPrebuiltNoBatch() server { return &prebuiltServer{h: newHub[*pbConn](), noBatch: true} }

func (s *prebuiltServer) serve(ln net.Listener) error { return acceptLoop(ln, s.handle) }

func (s *prebuiltServer) count() int { return s.h.count() }

func (s *prebuiltServer) handle(nc net.Conn) {
	if _, err := ws.Upgrade(nc); err != nil {
		_ = nc.Close()
		return
	}
	c := &pbConn{nc: nc, noBatch: s.noBatch}
	s.h.add(c)
	body, sendClose := c.readLoop()
	s.h.remove(c)
	if !sendClose || !c.closeAfter(prebuildFrame(ws.OpClose, body)) {
		c.kill()
	}
}

// prebuildFrame returns header+payload in one slice: the unit that is shared
// by all recipients of a broadcast.
func prebuildFrame(op ws.OpCode, p []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}
	buf := bytes.NewBuffer(make([]byte, 0, ws.HeaderSize(h)+len(p)))
	_ = ws.WriteHeader(buf, h) // cannot fail on a bytes.Buffer
	buf.Write(p)
	return buf.Bytes()
}

func (s *prebuiltServer) broadcast(msgs [][]byte) {
	members := s.h.snapshot()
	for _, p := range msgs {
		frame := prebuildFrame(ws.OpText, p)
		for _, c := range members {
			c.enqueue(frame)
		}
	}
}

// enqueue appends a frame and starts a writer if none is running. It never
// blocks on the network, so one slow client cannot stall a broadcast.
func (c *pbConn) enqueue(frame []byte) bool { return c.push(frame, false) }

// push appends frame; last marks it as the close frame, after which nothing
// more is accepted and the writer closes the socket once it is flushed.
func (c *pbConn) push(frame []byte, last bool) bool {
	c.mu.Lock()
	if c.dead || c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= maxQueuedFrames {
		c.dead = true
		c.mu.Unlock()
		_ = c.nc.Close() // the reader sees the error and unsubscribes
		return false
	}
	c.queue = append(c.queue, frame)
	c.closing = last
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
	c.mu.Unlock()
	return true
}

// closeAfter queues a close frame and makes the writer close the socket once
// everything before it is flushed.
func (c *pbConn) closeAfter(frame []byte) bool {
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	return c.push(frame, true)
}

func (c *pbConn) kill() {
	c.mu.Lock()
	c.dead = true
	c.queue = nil
	c.mu.Unlock()
	_ = c.nc.Close()
}

// writeLoop drains the queue with writev until it is empty, then exits, so
// an idle connection has no writer goroutine.
func (c *pbConn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.dead {
			c.writing = false
			closeNow := c.closing || c.dead
			if c.dead || cap(c.queue) > keepBatchCap {
				c.queue = nil
			}
			if cap(c.spare) > keepBatchCap {
				c.spare = nil
			}
			c.mu.Unlock()
			if closeNow {
				_ = c.nc.Close()
			}
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.mu.Unlock()

		var err error
		if c.noBatch {
			for _, f := range batch {
				if _, err = c.nc.Write(f); err != nil {
					break
				}
			}
		} else {
			// WriteTo on a *net.TCPConn is writev(2) (IOV_MAX chunks); it
			// advances its own copy of the slice headers, never the frames.
			bufs := net.Buffers(batch)
			_, err = bufs.WriteTo(c.nc)
		}
		clear(batch) // drop references so sent frames can be collected
		c.spare = batch[:0]
		if err != nil {
			c.mu.Lock()
			c.dead = true
			c.mu.Unlock()
		}
	}
}

// readLoop reads client frames until the connection ends. It returns the
// body of the close frame to send, if any: an echo of the client's close, or
// a protocol/policy error code.
func (c *pbConn) readLoop() (closeBody []byte, sendClose bool) {
	var (
		msg   []byte // data message in flight; nil between messages
		msgOp ws.OpCode
		state = ws.StateServerSide
	)
	fail := func(code ws.StatusCode) ([]byte, bool) {
		return ws.NewCloseFrameBody(code, ""), true
	}
	for {
		h, err := ws.ReadHeaderBuffer(c.nc, c.hdr[:])
		if err != nil {
			return nil, false // EOF or broken socket: nothing to say
		}
		// Opcodes, RSV bits, masking, control-frame size and continuation
		// sequencing, per RFC 6455 section 5.
		if err := ws.CheckHeader(h, state); err != nil {
			return fail(ws.StatusProtocolError)
		}
		var p []byte
		if h.OpCode.IsControl() {
			p = make([]byte, h.Length) // <= 125 bytes, checked above
		} else {
			// The declared length is trusted only up to the message limit.
			if h.Length > maxClientMessage-int64(len(msg)) {
				return fail(ws.StatusMessageTooBig)
			}
			old := len(msg)
			msg = slices.Grow(msg, int(h.Length))[:old+int(h.Length)]
			p = msg[old:]
		}
		if _, err := io.ReadFull(c.nc, p); err != nil {
			return nil, false
		}
		ws.Cipher(p, h.Mask, 0)

		switch h.OpCode {
		case ws.OpPing:
			c.enqueue(prebuildFrame(ws.OpPong, p))
		case ws.OpPong:
		case ws.OpClose:
			if len(p) == 0 {
				return []byte{}, true
			}
			if len(p) < 2 {
				return fail(ws.StatusProtocolError)
			}
			code, reason := ws.ParseCloseFrameData(p)
			if ws.CheckCloseFrameData(code, reason) != nil {
				return fail(ws.StatusProtocolError)
			}
			return ws.NewCloseFrameBody(code, ""), true
		default: // text, binary, continuation
			if h.OpCode != ws.OpContinuation {
				msgOp = h.OpCode
			}
			if !h.Fin {
				state = state.Set(ws.StateFragmented)
				continue
			}
			state = state.Clear(ws.StateFragmented)
			if msgOp == ws.OpText && !utf8.Valid(msg) {
				return fail(ws.StatusInvalidFramePayloadData)
			}
			msg = nil // the benchmark drops client data; release the buffer
		}
	}
}
