package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// readBufSize is per connection. Small on purpose: with 19,000 connections
// held by one process every kilobyte per connection is 19 MB, and bench
// frames are a few hundred bytes.
const readBufSize = 2048

// maxFrame bounds one received message; a larger one is a protocol error
// for our purposes and closes the connection.
const maxFrame = 1 << 20

// writeTimeout bounds every write so a stuck server cannot wedge a
// scenario's scheduling goroutine.
const writeTimeout = 5 * time.Second

// MessageFunc handles one received text message. event is the raw envelope
// event name; msg is the whole frame. Both are only valid during the call.
type MessageFunc func(c *Conn, event, msg []byte)

// Conn is one Pusher-protocol WebSocket client connection. A single
// goroutine reads; writes are serialised by wmu because control replies
// (pong, close) and scenario sends can happen at the same time.
type Conn struct {
	ID              int
	SocketID        string
	ActivityTimeout time.Duration

	nc      net.Conn
	br      *bufio.Reader
	clock   *Clock
	onMsg   MessageFunc
	onError func(c *Conn, ev envelope)

	wmu    sync.Mutex
	closed atomic.Bool
	done   chan struct{}
	// lastActive is the clock's ns of the last frame read or written; the
	// keep-alive sweeper reads it to decide who needs a pusher:ping.
	lastActive atomic.Int64

	smu     sync.Mutex
	waiters map[string]chan error

	buf  []byte
	frag []byte
}

// DialOptions configures Dial.
type DialOptions struct {
	URL     string
	Dialer  *sourceDialer
	Timeout time.Duration
	Clock   *Clock
	OnMsg   MessageFunc
	// OnError, if set, sees every pusher:error / pusher:subscription_error
	// (after pending subscriptions have been failed).
	OnError func(c *Conn, ev envelope)
}

// Dial connects, upgrades, waits for pusher:connection_established and
// starts the read loop.
func Dial(ctx context.Context, id int, o DialOptions) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	nc, br, err := dialWS(ctx, o.URL, o.Dialer, nil)
	if err != nil {
		return nil, err
	}
	c := &Conn{ID: id, nc: nc, br: br, clock: o.Clock, onMsg: o.OnMsg, onError: o.OnError, done: make(chan struct{})}
	dl, _ := ctx.Deadline()
	_ = nc.SetReadDeadline(dl)
	if err := c.readHandshake(); err != nil {
		_ = nc.Close() // the handshake error is the one to report
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Time{})
	c.lastActive.Store(c.clock.Now())
	go c.readLoop()
	return c, nil
}

// dialWS opens a WebSocket client connection through dialer (offering
// protocols, if any) and returns the socket with a small reader that
// starts with whatever the server sent along with its handshake response.
func dialWS(ctx context.Context, url string, dialer *sourceDialer, protocols []string) (net.Conn, *bufio.Reader, error) {
	d := ws.Dialer{
		NetDial:         dialer.DialContext,
		ReadBufferSize:  readBufSize,
		WriteBufferSize: 1024,
		Protocols:       protocols,
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	if br != nil && br.Buffered() > 0 {
		// The server's first frame can arrive with the handshake response.
		pre, _ := br.Peek(br.Buffered())
		pre = bytes.Clone(pre)
		ws.PutReader(br)
		return nc, bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), nc), readBufSize), nil
	}
	if br != nil {
		ws.PutReader(br)
	}
	return nc, bufio.NewReaderSize(nc, readBufSize), nil
}

// maskedFrame returns p as one masked client frame (RFC 6455 §5.3: client
// frames must be masked), header and payload in one buffer so that the
// server sees one TCP segment per message.
func maskedFrame(op ws.OpCode, p []byte) ([]byte, error) {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p)), Masked: true, Mask: ws.NewMask()}
	buf := make([]byte, ws.HeaderSize(h)+len(p))
	hb := bytes.NewBuffer(buf[:0])
	if err := ws.WriteHeader(hb, h); err != nil {
		return nil, err
	}
	hn := hb.Len()
	copy(buf[hn:], p)
	ws.Cipher(buf[hn:], h.Mask, 0)
	return buf, nil
}

func (c *Conn) readHandshake() error {
	msg, err := c.readMessage()
	if err != nil {
		return fmt.Errorf("waiting for connection_established: %w", err)
	}
	var ev envelope
	if err := json.Unmarshal(msg, &ev); err != nil {
		return fmt.Errorf("bad first message: %w", err)
	}
	if ev.Event == evError {
		var ed errorData
		_ = ev.dataObject(&ed)
		return fmt.Errorf("server refused connection: %s", ed)
	}
	if ev.Event != evConnEstablished {
		return fmt.Errorf("first message is %q, want %s", ev.Event, evConnEstablished)
	}
	var ed establishedData
	if err := ev.dataObject(&ed); err != nil {
		return fmt.Errorf("bad connection_established data: %w", err)
	}
	if ed.SocketID == "" {
		return errors.New("connection_established without socket_id")
	}
	c.SocketID = ed.SocketID
	c.ActivityTimeout = time.Duration(ed.ActivityTimeout) * time.Second
	return nil
}

// readMessage reads one complete text/binary message, answering control
// frames on the way. The returned slice is reused by the next call.
func (c *Conn) readMessage() ([]byte, error) {
	return readWSMessage(c.br, &c.buf, &c.frag, c.writeFrame)
}

// readWSMessage reads one complete text/binary message from a server
// (frames unmasked or masked), answering pings and echoing a close through
// reply. buf and frag are the caller's reusable buffers; the returned
// slice aliases one of them until the next call.
func readWSMessage(br *bufio.Reader, buf, frag *[]byte, reply func(ws.OpCode, []byte) error) ([]byte, error) {
	*frag = (*frag)[:0]
	fragmented := false
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return nil, err
		}
		if h.Length > maxFrame || (fragmented && int64(len(*frag))+h.Length > maxFrame) {
			return nil, fmt.Errorf("frame of %d bytes exceeds %d", h.Length, maxFrame)
		}
		n := int(h.Length)
		if cap(*buf) < n {
			*buf = make([]byte, n, max(n, 256))
		}
		p := (*buf)[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			_ = reply(ws.OpPong, p)
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			_ = reply(ws.OpClose, p)
			return nil, &CloseError{Code: int(code), Reason: reason}
		case ws.OpText, ws.OpBinary:
			if h.Fin {
				return p, nil
			}
			fragmented = true
			*frag = append((*frag)[:0], p...)
		case ws.OpContinuation:
			if !fragmented {
				return nil, errors.New("continuation without a first frame")
			}
			*frag = append(*frag, p...)
			if h.Fin {
				return *frag, nil
			}
		default:
			return nil, fmt.Errorf("unexpected opcode %v", h.OpCode)
		}
	}
}

// CloseError is a close frame received from the server.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed by server: %d %s", e.Code, e.Reason) }

func (c *Conn) readLoop() {
	defer close(c.done)
	defer c.failWaiters(net.ErrClosed)
	for {
		msg, err := c.readMessage()
		if err != nil {
			_ = c.nc.Close() // the connection is over either way
			return
		}
		c.lastActive.Store(c.clock.Now())
		ev, ok := topLevelString(msg, "event")
		if !ok {
			continue
		}
		switch string(ev) {
		case evPing:
			_ = c.Send(pongMsg)
			continue
		case evPong:
			continue
		case evSubSucceeded:
			if ch, ok := topLevelString(msg, "channel"); ok {
				c.resolve(string(ch), nil)
			}
		case evError, evSubError:
			c.handleError(msg)
		}
		if c.onMsg != nil {
			c.onMsg(c, ev, msg)
		}
	}
}

func (c *Conn) handleError(msg []byte) {
	var ev envelope
	if json.Unmarshal(msg, &ev) != nil {
		return
	}
	var ed errorData
	_ = ev.dataObject(&ed)
	err := errors.New(ed.String())
	if ev.Channel != "" {
		c.resolve(ev.Channel, err)
	} else {
		// Pusher's non-fatal errors often omit the channel; fail whatever is
		// pending rather than waiting for a timeout.
		c.failWaiters(err)
	}
	if c.onError != nil {
		c.onError(c, ev)
	}
}

func (c *Conn) resolve(channel string, err error) {
	c.smu.Lock()
	w := c.waiters[channel]
	delete(c.waiters, channel)
	c.smu.Unlock()
	if w != nil {
		w <- err
	}
}

func (c *Conn) failWaiters(err error) {
	c.smu.Lock()
	pending := c.waiters
	c.waiters = nil
	c.smu.Unlock()
	for _, w := range pending {
		w <- err
	}
}

// Subscribe sends pusher:subscribe and waits for subscription_succeeded or
// an error. auth/channelData may be empty.
func (c *Conn) Subscribe(ctx context.Context, channel, auth, channelData string) error {
	w := c.SubscribeAsync(channel, auth, channelData)
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		c.smu.Lock()
		delete(c.waiters, channel)
		c.smu.Unlock()
		return fmt.Errorf("subscribe %s: %w", channel, ctx.Err())
	case <-c.done:
		return fmt.Errorf("subscribe %s: connection closed", channel)
	}
}

// SubscribeAsync sends pusher:subscribe and returns a channel that receives
// the outcome (nil on success). The channel is buffered: the reader never
// blocks on it.
func (c *Conn) SubscribeAsync(channel, auth, channelData string) <-chan error {
	w := make(chan error, 1)
	c.smu.Lock()
	if c.waiters == nil {
		c.waiters = make(map[string]chan error)
	}
	if old := c.waiters[channel]; old != nil {
		old <- errors.New("superseded")
	}
	c.waiters[channel] = w
	c.smu.Unlock()
	if err := c.Send(subscribeMsg(channel, auth, channelData)); err != nil {
		c.resolve(channel, err)
	}
	return w
}

// Unsubscribe sends pusher:unsubscribe (the protocol sends no reply).
func (c *Conn) Unsubscribe(channel string) error {
	return c.Send(unsubscribeMsg(channel))
}

// Send writes one text message.
func (c *Conn) Send(msg []byte) error {
	return c.writeFrame(ws.OpText, msg)
}

// writeFrame masks a copy of p (client frames must be masked, RFC 6455 §5.3)
// and writes header and payload in one write, so the server sees one TCP
// segment per message.
func (c *Conn) writeFrame(op ws.OpCode, p []byte) error {
	if c.closed.Load() && op != ws.OpClose {
		return net.ErrClosed
	}
	buf, err := maskedFrame(op, p)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.nc.Write(buf)
	if err == nil {
		c.lastActive.Store(c.clock.Now())
	}
	return err
}

// Close sends a normal close frame (best effort) and closes the socket. It
// does not wait for the server's reply: at 19,000 connections the teardown
// must not take minutes.
func (c *Conn) Close() {
	if c.closed.Swap(true) {
		return
	}
	_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = c.nc.Close()
}

// Done is closed when the read loop has exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Alive reports whether the read loop is still running.
func (c *Conn) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// pingIfIdle sends pusher:ping when nothing has been sent or received for
// idle; servers close silent connections (4201), which would turn an idle
// benchmark into a churn benchmark.
func (c *Conn) pingIfIdle(now int64, idle time.Duration) {
	if now-c.lastActive.Load() >= int64(idle) && c.Alive() {
		_ = c.Send(pingMsg)
	}
}
