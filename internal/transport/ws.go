package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
)

// IDSource hands out connection ids unique within the process.
type IDSource struct{ n atomic.Uint64 }

// Next returns a fresh id (never 0).
func (s *IDSource) Next() uint64 { return s.n.Add(1) }

// Upgrader turns HTTP requests into WebSocket connections. gobwas/ws does
// the handshake validation and frame unmasking; reading, writing, fan-out
// framing and limits are ours, because the send path shares one framed
// payload between recipients and flushes with writev (see outbound.go and
// docs/websocket-library.md for the measurements behind the choice).
type Upgrader struct {
	IDs     *IDSource
	Options Options
	// Compression enables permessage-deflate when the client offers it.
	Compression bool
	// Subprotocol picks the Sec-WebSocket-Protocol to answer from the
	// client's offers in order; "" answers none. Nil answers none.
	Subprotocol func(offered string) bool
	// ReadBufferBytes sizes the per-connection read buffer (default 512):
	// small, because idle connections dominate memory and larger payloads
	// are read straight into the message buffer anyway.
	ReadBufferBytes int
	// Poller, when set, holds idle connections without a goroutine each
	// (plain TCP only: TLS buffers inside crypto/tls, out of epoll's sight).
	Poller *Poller
	// ParkAfter is how long a connection must have been silent before it
	// is parked in the Poller (default 2 s). Parking a busy connection
	// after every message would cost a thread wake-up per message.
	ParkAfter time.Duration

	initOnce    sync.Once
	opts        Options
	payloadPool sync.Pool // *[]byte, 4 KiB: most messages fit
	readers     sync.Pool // *bufio.Reader of ReadBufferBytes, lent while reading
	deflaters   sync.Pool // *flate.Writer shared by Message.compressed
}

func (u *Upgrader) init() {
	u.initOnce.Do(func() {
		u.opts = u.Options.withDefaults()
		if u.IDs == nil {
			u.IDs = &IDSource{}
		}
		if u.ReadBufferBytes <= 0 {
			u.ReadBufferBytes = 512
		}
		if u.ParkAfter <= 0 {
			u.ParkAfter = 2 * time.Second
		}
	})
}

// Upgrade performs the handshake and starts the connection's reader. The
// handler returned by newHandler receives its messages; newHandler may
// already Send or Close on the connection (to refuse an unknown app with a
// protocol-level error, for example). On a failed handshake the HTTP error
// has been written and the error is returned.
//
// obs, when not nil, replaces Options.Observer for this connection, so
// traffic can be counted per app.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request, obs Observer, newHandler func(Conn) Handler) error {
	u.init()
	if obs == nil {
		obs = u.opts.Observer
	}
	var neg deflateNegotiation
	hu := ws.HTTPUpgrader{Protocol: u.Subprotocol}
	if u.Compression {
		hu.Negotiate = neg.negotiate
	}
	held := getHeldResponse(w)
	defer held.release()
	nc, rw, _, err := hu.Upgrade(r, held)
	if err != nil {
		if nc != nil {
			// The refusal (400 and its reason) is in held, not yet sent.
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(held.buf)
			_ = nc.Close()
		}
		return err
	}
	c := &wsConn{id: u.IDs.Next(), up: u}
	c.src.c = c
	if br := rw.Reader; br.Buffered() > 0 {
		// The client sent frames right behind its handshake; keep them.
		early, _ := br.Peek(br.Buffered())
		c.src.early = string(early)
	}
	if sc, ok := nc.(syscall.Conn); ok && u.Poller != nil {
		if rc, err := sc.SyscallConn(); err == nil {
			c.src.rc = rc
		}
	}
	c.out.init(nc, &u.opts, obs, c)
	if neg.accepted {
		c.deflate = &inflater{contextTakeover: !neg.clientNoContextTakeover}
	}
	c.lastRead.Store(time.Now().UnixNano())
	c.lastGap = math.MaxInt64
	c.out.hold(held.response()) // sent with the first frame (handshake.go)
	c.handler = newHandler(c)
	c.out.flushHeld()
	go c.readLoop()
	return nil
}

// wsConn is one WebSocket connection. Every idle connection holds one, so
// its layout counts: the socket and the observer live only in out, the
// small fields share words, and the first close frame is kept as its parts
// rather than a CloseInfo; 424 bytes became 352 (a size class), measured
// with TestMemoryPerIdleConnection in internal/server.
type wsConn struct {
	id      uint64
	up      *Upgrader
	src     sockReader
	br      *bufio.Reader // nil while parked (see idle.go)
	out     outbound
	handler Handler
	deflate *inflater // nil unless permessage-deflate was negotiated

	lastRead atomic.Int64
	// unreadPayload is the length of a refused frame's payload, skipped
	// before looking for the peer's close frame.
	unreadPayload int64
	lastGap       int64        // ns between the last two inbound frames (MaxInt64 before the second); reader only
	closeAt       atomic.Int64 // unix ns: read deadline for the peer's close frame, set before closeSent

	// rstate, registered and idleDeadline belong to parking (idle.go);
	// the last two are only touched by the current reader goroutine.
	rstate       atomic.Int32
	closeRecv    atomic.Bool // the peer's close frame arrived
	closeSent    atomic.Bool // our close frame was written
	registered   bool
	idleDeadline bool // a read deadline for parking is set
	readOnce     bool // a frame has arrived

	// The first close frame seen either way, under closeMu; closeCode 0
	// means none yet.
	closeByServer bool
	closeCode     uint16
	// slot is the connection's index in the Poller, once registered.
	slot        uint32
	closeMu     sync.Mutex
	closeReason string
}

func (c *wsConn) ID() uint64           { return c.id }
func (c *wsConn) RemoteAddr() net.Addr { return c.out.nc.RemoteAddr() }
func (c *wsConn) QueuedBytes() int     { return c.out.queued() }
func (c *wsConn) LastRead() time.Time  { return time.Unix(0, c.lastRead.Load()) }
func (c *wsConn) Send(m *Message) error {
	return c.out.push(m)
}
func (c *wsConn) sendAll(ms []*Message) error { return c.out.pushAll(ms) }

func (c *wsConn) Ping() { c.out.pushPing(&Message{kind: kindPing}) }

func (c *wsConn) Close(code uint16, reason string) {
	c.closeWith(code, reason, true, nil)
}

func (c *wsConn) closeWith(code uint16, reason string, byServer bool, cause error) {
	m := closeMessage(code, reason)
	if code == 0 {
		m = &Message{kind: kindClose}
	}
	c.closeMu.Lock()
	if c.closeCode == 0 && !c.closeRecv.Load() {
		c.closeCode, c.closeReason, c.closeByServer = code, reason, byServer
	}
	c.closeMu.Unlock()
	c.out.pushClose(m, cause)
}

// rawConn implements rawWriter: the socket's RawConn when the connection
// can park (it has one), else nil.
func (c *wsConn) rawConn() syscall.RawConn { return c.src.rc }

// frame implements framer.
func (c *wsConn) frame(hdr []byte, m *Message) ([]byte, []byte) {
	switch m.kind {
	case kindText, kindBinary:
		op := byte(opText)
		if m.kind == kindBinary {
			op = opBinary
		}
		// Tiny payloads grow when deflated; send them plain (RSV1 clear).
		if c.deflate != nil && len(m.Payload) >= 64 {
			body := m.compressed(&c.up.deflaters)
			return appendFrameHeader(hdr, op, true, len(body)), body
		}
		return appendFrameHeader(hdr, op, false, len(m.Payload)), m.Payload
	case kindPing:
		return appendFrameHeader(hdr, opPing, false, len(m.Payload)), m.Payload
	case kindPong:
		return appendFrameHeader(hdr, opPong, false, len(m.Payload)), m.Payload
	default:
		return appendFrameHeader(hdr, opClose, false, len(m.Payload)), m.Payload
	}
}

// closeSocket implements framer: every close of the socket, by the reader
// or the writer. A socket that can park leaves the poller's epoll set
// first (see Poller.unregister).
func (c *wsConn) closeSocket() {
	if c.canPark() {
		c.up.Poller.unregister(c)
	}
	_ = c.out.nc.Close()
}

// closeWritten implements framer: after our close frame, either the peer
// already closed (so the handshake is complete and the socket can go), or
// we give it CloseTimeout to answer.
func (c *wsConn) closeWritten() {
	c.closeAt.Store(time.Now().Add(c.up.opts.CloseTimeout).UnixNano())
	c.closeSent.Store(true)
	if c.closeRecv.Load() {
		c.closeSocket()
		return
	}
	_ = c.out.nc.SetReadDeadline(time.Unix(0, c.closeAt.Load()))
	c.wakeReader()
}

type frameHeader struct {
	fin    bool
	rsv    byte
	op     byte
	masked bool
	length int64
	mask   [4]byte
}

func (c *wsConn) readHeader() (h frameHeader, err error) {
	var b [8]byte
	if _, err = io.ReadFull(c.br, b[:2]); err != nil {
		return h, err
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = (b[0] >> 4) & 0x7
	h.op = b[0] & 0x0f
	h.masked = b[1]&0x80 != 0
	switch l := b[1] & 0x7f; l {
	case 126:
		if _, err = io.ReadFull(c.br, b[:2]); err != nil {
			return h, err
		}
		h.length = int64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err = io.ReadFull(c.br, b[:8]); err != nil {
			return h, err
		}
		u := binary.BigEndian.Uint64(b[:8])
		if u>>63 != 0 {
			// RFC 6455 section 5.2 forbids it; answer with a close frame
			// like any violation. Where this frame ends is unknowable, so
			// everything after it is skipped while waiting for the peer
			// to close.
			c.unreadPayload = math.MaxInt64
			return h, protocolViolation("64-bit frame length with the high bit set")
		}
		h.length = int64(u)
	default:
		h.length = int64(l)
	}
	if h.masked {
		if _, err = io.ReadFull(c.br, h.mask[:]); err != nil {
			return h, err
		}
	}
	return h, nil
}

// violation is a peer error that ends the connection with a close code.
type violation struct {
	code   uint16
	reason string
}

func (v *violation) Error() string { return fmt.Sprintf("websocket close %d: %s", v.code, v.reason) }

// Is makes a 1002 violation match ErrProtocol.
func (v *violation) Is(target error) bool {
	return target == ErrProtocol && v.code == CloseProtocolError
}

func protocolViolation(reason string) error {
	return &violation{code: CloseProtocolError, reason: reason}
}

// readLoop reads frames until the connection ends, then tears it down.
// It is the connection's only reader and the only caller of the handler.
// A connection that can park ends its readLoop between messages when the
// socket is empty; the Poller starts a new one when bytes arrive.
func (c *wsConn) readLoop() {
	var (
		msg        *[]byte // reassembly buffer from the pool
		msgOp      byte
		compressed bool
		inMessage  bool
		parked     bool
		err        error
	)
	max := int64(c.up.opts.MaxMessageBytes)
	defer func() {
		if parked {
			return // the connection belongs to the poller now
		}
		if msg != nil {
			c.up.putPayload(msg)
		}
		c.teardown(err)
	}()
	c.acquireReader()
	park := c.canPark()
	for {
		if park && !inMessage {
			if parked, err = c.waitIdle(); parked || err != nil {
				return
			}
		}
		var h frameHeader
		if h, err = c.readHeader(); err != nil {
			return
		}
		if err = c.checkHeader(h, inMessage); err != nil {
			c.unreadPayload = h.length
			return
		}
		if h.op >= opClose {
			var ctl [125]byte
			p := ctl[:h.length]
			if _, err = io.ReadFull(c.br, p); err != nil {
				return
			}
			ws.Cipher(p, h.mask, 0)
			c.markRead()
			if done := c.control(h.op, p, &err); done {
				return
			}
			continue
		}
		if !inMessage {
			msgOp, compressed, inMessage = h.op, h.rsv&0x4 != 0, true
			if msg == nil {
				msg = c.up.getPayload()
			}
			*msg = (*msg)[:0]
		}
		have := int64(len(*msg))
		if have+h.length > max {
			c.unreadPayload = h.length
			err = &violation{code: CloseTooBig, reason: fmt.Sprintf("message over %d bytes", max)}
			return
		}
		buf := slices.Grow(*msg, int(h.length))[:have+h.length]
		if _, err = io.ReadFull(c.br, buf[have:]); err != nil {
			return
		}
		ws.Cipher(buf[have:], h.mask, 0)
		*msg = buf
		if !h.fin {
			continue
		}
		inMessage = false
		data := *msg
		if compressed {
			if data, err = c.deflate.inflate(data, int(max)); err != nil {
				return
			}
		}
		if msgOp == opText && !utf8.Valid(data) {
			err = &violation{code: CloseInvalidPayload, reason: "text frame is not valid UTF-8"}
			return
		}
		c.markRead()
		c.out.obs.MessageIn(len(data))
		c.handler.HandleMessage(data, msgOp == opBinary)
		// Return the buffer at once: an idle connection must not pin
		// 4 KiB (measured: 41 MB of a 66 MB heap at 10,000 idle
		// connections before this). putPayload drops oversized ones.
		c.up.putPayload(msg)
		msg = nil
	}
}

// checkHeader applies RFC 6455 section 5 to one frame header.
func (c *wsConn) checkHeader(h frameHeader, inMessage bool) error {
	if !h.masked {
		return protocolViolation("client frames must be masked")
	}
	switch h.op {
	case opClose, opPing, opPong:
		if !h.fin {
			return protocolViolation("fragmented control frame")
		}
		if h.length > 125 {
			return protocolViolation("control frame over 125 bytes")
		}
		if h.rsv != 0 {
			return protocolViolation("reserved bits set on a control frame")
		}
	case opText, opBinary:
		if inMessage {
			return protocolViolation("new message before the previous one ended")
		}
		if h.rsv&0x3 != 0 || (h.rsv&0x4 != 0 && c.deflate == nil) {
			return protocolViolation("reserved bits set without a negotiated extension")
		}
	case opContinuation:
		if !inMessage {
			return protocolViolation("continuation frame with no message to continue")
		}
		if h.rsv != 0 {
			return protocolViolation("reserved bits set on a continuation frame")
		}
	default:
		return protocolViolation(fmt.Sprintf("reserved opcode 0x%x", h.op))
	}
	return nil
}

// control handles a ping, pong or close frame; it reports whether the
// read loop should end.
func (c *wsConn) control(op byte, p []byte, errp *error) bool {
	switch op {
	case opPing:
		c.out.pushPong(&Message{Payload: bytes.Clone(p), kind: kindPong})
	case opPong:
		// Liveness only; lastRead was updated.
	case opClose:
		code, reason, bad := parseClosePayload(p)
		if bad != 0 {
			*errp = &violation{code: bad, reason: "invalid close frame"}
			return true
		}
		c.closeMu.Lock()
		if c.closeCode == 0 && !c.closeSent.Load() {
			c.closeCode, c.closeReason, c.closeByServer = code, reason, false
		}
		c.closeMu.Unlock()
		c.closeRecv.Store(true)
		if c.closeSent.Load() {
			return true // we started the handshake; it is complete
		}
		// Echo the peer's code, as RFC 6455 section 5.5.1 asks.
		c.closeWith(code, "", false, nil)
		return true
	}
	return false
}

// teardown ends the connection once: it sends a close frame for protocol
// violations, waits (bounded) for a queued close frame to be written,
// closes the socket and tells the handler.
func (c *wsConn) teardown(readErr error) {
	var v *violation
	if errors.As(readErr, &v) {
		c.closeWith(v.code, v.reason, true, readErr)
	}
	c.out.waitClose(c.up.opts.CloseTimeout)
	if v != nil && !c.closeRecv.Load() {
		// Closing now would reset the socket while the peer's frames are
		// still arriving, and a reset can destroy our close frame before
		// the peer reads it. Read on until its close (or the deadline that
		// closeWritten set).
		c.drainUntilClose()
	}
	c.closeSocket()
	c.out.markDead()
	c.closeMu.Lock()
	info := CloseInfo{Code: c.closeCode, Reason: c.closeReason, ByServer: c.closeByServer}
	c.closeMu.Unlock()
	if cause := c.out.closeCause(); cause != nil {
		info.Err = cause
		if errors.Is(cause, ErrSlowConsumer) && info.Code == 0 {
			info.Code, info.ByServer = c.up.opts.SlowConsumerCode, true
		}
	} else if info.Code == 0 && readErr != nil && !errors.Is(readErr, io.EOF) {
		info.Err = readErr
	}
	if info.Err == nil && info.Code == 0 && readErr != nil {
		info.Err = readErr
	}
	if c.registered {
		c.up.Poller.forget(c)
	}
	c.releaseReader()
	c.handler.HandleClose(info)
}

// drainUntilClose discards frames until the peer's close frame, an error or
// the read deadline.
func (c *wsConn) drainUntilClose() {
	c.idleDeadline = false // this deadline is final: sockReader must not wait past it
	_ = c.out.nc.SetReadDeadline(time.Now().Add(c.up.opts.CloseTimeout))
	if _, err := io.CopyN(io.Discard, c.br, c.unreadPayload); err != nil {
		return
	}
	for {
		h, err := c.readHeader()
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c.br, h.length); err != nil || h.op == opClose {
			return
		}
	}
}

func (u *Upgrader) getPayload() *[]byte {
	if p, ok := u.payloadPool.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (u *Upgrader) putPayload(p *[]byte) {
	if cap(*p) == 4096 {
		*p = (*p)[:0]
		u.payloadPool.Put(p)
	}
}

// deflateNegotiation accepts the first permessage-deflate offer we can
// honour. We always answer server_no_context_takeover: a broadcast is then
// compressed once and the same bytes are valid for every recipient.
type deflateNegotiation struct {
	accepted                bool
	clientNoContextTakeover bool
}

func (d *deflateNegotiation) negotiate(opt httphead.Option) (httphead.Option, error) {
	if d.accepted || string(opt.Name) != "permessage-deflate" {
		return httphead.Option{}, nil
	}
	ok := true
	clientNCT := false
	opt.Parameters.ForEach(func(k, v []byte) bool {
		switch string(k) {
		case "server_no_context_takeover", "client_max_window_bits":
		case "client_no_context_takeover":
			clientNCT = true
		case "server_max_window_bits":
			// compress/flate always uses a 32 KiB window: decline smaller.
			ok = string(v) == "15"
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return httphead.Option{}, nil
	}
	d.accepted, d.clientNoContextTakeover = true, clientNCT
	params := map[string]string{"server_no_context_takeover": ""}
	if clientNCT {
		params["client_no_context_takeover"] = ""
	}
	return httphead.NewOption("permessage-deflate", params), nil
}
