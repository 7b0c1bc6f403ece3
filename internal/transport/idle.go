package transport

import (
	"bufio"
	"errors"
	"os"
	"syscall"
	"time"
)

// Reader states of a WebSocket connection that can park (see Poller).
// Exactly one goroutine reads a connection at a time: the one that moved
// the state to readerRunning.
const (
	readerRunning int32 = iota // a goroutine is reading (or about to)
	readerParked               // no goroutine; the socket is armed in the poller
	readerWoken                // a wake-up came while running: do not park now
)

// errWouldBlock is sockReader's answer to a non-blocking read of an empty
// socket.
var errWouldBlock = errors.New("transport: read would block")

// sockReader feeds a connection's bufio.Reader. Normally it reads like the
// net.Conn (blocking through the runtime's netpoller); in try mode it makes
// one non-blocking read, so the reader can learn that the socket is empty
// without waiting on it.
type sockReader struct {
	c  *wsConn
	rc syscall.RawConn // nil: the connection cannot park (TLS, not a socket)
	// early holds bytes the client sent right behind its handshake (a
	// string: 8 bytes less than a slice in every connection).
	early string
	try   bool
	// boundary is set while the reader waits for the next message, the
	// only place where the idle deadline may end a read.
	boundary bool
}

func (r *sockReader) Read(p []byte) (int, error) {
	if len(r.early) > 0 {
		n := copy(p, r.early)
		r.early = r.early[n:]
		return n, nil
	}
	if r.try {
		return r.readNow(p)
	}
	for {
		n, err := r.c.out.nc.Read(p)
		if err == nil || r.boundary || !r.c.idleDeadline || !errors.Is(err, os.ErrDeadlineExceeded) || r.c.closeSent.Load() {
			return n, err
		}
		// The idle deadline fired in the middle of a frame: the peer is
		// slow, not idle. Wait on without it.
		r.c.setIdleDeadline(time.Time{})
	}
}

// setIdleDeadline sets (or with the zero time clears) the read deadline
// that tells the reader it has been idle for ParkAfter. The close
// handshake's deadline wins: closeWritten stores closeAt and closeSent
// before setting its own deadline, so either it sets after us or we see
// closeSent here and restore it.
func (c *wsConn) setIdleDeadline(t time.Time) {
	_ = c.out.nc.SetReadDeadline(t)
	c.idleDeadline = !t.IsZero()
	if c.closeSent.Load() {
		_ = c.out.nc.SetReadDeadline(time.Unix(0, c.closeAt.Load()))
		c.idleDeadline = false
	}
}

// waitIdle is called by a parkable connection's reader between messages.
// A connection whose last two frames were more than ParkAfter apart (or
// that has sent only one) is parked at once (see tryPark): most sit idle
// after subscribing, and a connect storm then never holds a goroutine
// stack per connection. A chatty one waits for its next frame like a
// blocking read, with a deadline: once silent for ParkAfter it is parked.
// Its deadline moves at most once per ParkAfter, and it pays no wake-up
// per message (measured: parking after every message cost 3x the context
// switches and +50% CPU in the client-events benchmark).
func (c *wsConn) waitIdle() (parked bool, err error) {
	fired := false // our deadline has passed but is still set on the socket
	for {
		if c.br.Buffered() > 0 || c.closeSent.Load() {
			return false, nil
		}
		due := c.LastRead().Add(c.up.ParkAfter)
		if c.lastGap >= int64(c.up.ParkAfter) || !time.Now().Before(due) {
			if c.idleDeadline {
				c.setIdleDeadline(time.Time{}) // an expired deadline fails even non-blocking reads
			}
			return c.tryPark()
		}
		if !c.idleDeadline || fired {
			c.setIdleDeadline(due)
		}
		c.src.boundary = true
		_, err := c.br.Peek(1)
		c.src.boundary = false
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !c.idleDeadline || c.closeSent.Load() {
			return false, err
		}
		// It fired: set for an earlier message, or the connection is
		// idle now. The loop decides.
		fired = true
	}
}

// canPark reports whether this connection may give up its goroutine.
func (c *wsConn) canPark() bool { return c.src.rc != nil }

// tryPark is called by the reader between messages. When the socket has
// nothing to read it returns the read buffer to the pool, arms the socket
// in the poller and reports parked: the calling goroutine must then return
// without touching the connection again. Otherwise the socket has bytes
// (now buffered), or err says why it cannot be read (io.EOF, a reset).
func (c *wsConn) tryPark() (parked bool, err error) {
	for {
		// After our close frame the reader waits for the peer's under a
		// read deadline, which a parked connection would not notice.
		if c.closeSent.Load() || c.br.Buffered() > 0 {
			return false, nil
		}
		c.src.try = true
		_, err := c.br.Peek(1)
		c.src.try = false
		if err != errWouldBlock {
			return false, err
		}
		c.releaseReader()
		if c.up.Poller.arm(c) != nil {
			c.acquireReader()
			return false, nil // closed socket or poller: the blocking read ends it
		}
		// Count first: once parked, the connection may be woken (and
		// uncounted) before this goroutine runs again.
		c.up.Poller.parkedDelta(1)
		if c.rstate.CompareAndSwap(readerRunning, readerParked) {
			return true, nil
		}
		c.up.Poller.parkedDelta(-1)
		// Woken while arming (a close was written, or the poller fired
		// already): look again instead of parking.
		c.rstate.Store(readerRunning)
		c.acquireReader()
	}
}

// wake makes sure a goroutine reads the connection: it starts one for a
// parked connection, and tells a running one not to park.
func (c *wsConn) wake() {
	for {
		switch c.rstate.Load() {
		case readerParked:
			if c.rstate.CompareAndSwap(readerParked, readerRunning) {
				c.up.Poller.parkedDelta(-1)
				go c.readLoop()
				return
			}
		case readerRunning:
			if c.rstate.CompareAndSwap(readerRunning, readerWoken) {
				return
			}
		default:
			return
		}
	}
}

// wakeReader implements framer: the writer closed the socket or sent our
// close frame, and a parked connection would never learn it from epoll
// (a closed descriptor leaves the set silently).
func (c *wsConn) wakeReader() {
	if c.canPark() {
		c.wake()
	}
}

// releaseReader returns the empty read buffer to the Upgrader's pool, so an
// idle connection holds none.
func (c *wsConn) releaseReader() {
	c.br.Reset(nil) // the pool must not keep this connection reachable
	c.up.readers.Put(c.br)
	c.br = nil
}

func (c *wsConn) acquireReader() {
	if c.br != nil {
		return
	}
	if br, ok := c.up.readers.Get().(*bufio.Reader); ok {
		br.Reset(&c.src)
		c.br = br
		return
	}
	c.br = bufio.NewReaderSize(&c.src, c.up.ReadBufferBytes)
}

// markRead records an inbound frame: LastRead, and the gap that tells a
// chatty connection from one that can be parked at once.
func (c *wsConn) markRead() {
	now := time.Now().UnixNano()
	if c.readOnce {
		c.lastGap = now - c.lastRead.Load()
	}
	c.readOnce = true
	c.lastRead.Store(now)
}
