package transport

import (
	"net"
	"sync"
	"time"
)

// framer turns a queued Message into the bytes that go on the wire: a
// header appended to hdr (possibly none) and a body that is shared, never
// copied. WebSocket and raw streams differ only here.
type framer interface {
	frame(hdr []byte, m *Message) (newHdr []byte, body []byte)
	// closeWritten runs on the writer goroutine once a close message has
	// been written.
	closeWritten()
	// closeSocket closes the socket (the writer does, on a write error).
	closeSocket()
	// wakeReader runs after the writer closed the socket on an error: a
	// reader that is not blocked on the socket must still learn of it.
	wakeReader()
}

// maxHeaderBytes is the largest WebSocket server frame header (no mask).
const maxHeaderBytes = 10

// outbound is the byte-bounded send queue of one connection. Send never
// blocks. A message pushed to an empty queue with nobody writing is written
// at once by the pusher, without waiting (inline.go); otherwise it is
// appended and, when nobody is writing, a writer goroutine is started that
// drains the queue with one writev per batch and exits when it is empty.
// Idle connections therefore hold no writer goroutine and no buffer.
//
// Lock order: a hub channel lock may be held while calling push; outbound.mu
// is a leaf and is never held while writing to the socket.
type outbound struct {
	nc     net.Conn
	opts   *Options
	obs    Observer
	framer framer

	mu    sync.Mutex
	items []*Message
	bytes int // queued plus in flight (see cost)
	// stalledPongBytes counts the pongs replaced since the writer last
	// finished a write. It counts against the byte bound: a peer that
	// keeps pinging into a socket that accepts nothing is a slow consumer.
	stalledPongBytes int
	cause            error // why closing started, for CloseInfo
	// pongAt is the index in items of the pong not yet taken by the
	// writer, or -1. RFC 6455 section 5.5.3 lets an endpoint answer only
	// the most recent ping, so a newer pong replaces it: a peer that pings
	// without reading holds at most one pong in the queue. int32, next to
	// the flags, so that the five share one word.
	pongAt  int32
	writing bool // the writer role is taken: a writer goroutine, an inline write, or flushHeld's
	closing bool // a close is queued: no more data accepted
	dead    bool // the socket failed or was closed
	// perMessage: one write call per message (see StreamServer.WritePerMessage).
	perMessage bool
	// closeFlushed: the close message was written (or the socket failed).
	closeFlushed bool

	// closeDone is made by waitClose, only for a close that is still
	// pending, and closed with closeFlushed. Made up front it cost 96 B
	// for every connection (TestMemoryPerIdleConnection, internal/server).
	closeDone chan struct{}
}

func (o *outbound) init(nc net.Conn, opts *Options, obs Observer, f framer) {
	o.nc, o.opts, o.obs, o.framer = nc, opts, obs, f
	o.pongAt = -1
}

// cost is what a message counts against the send queue bound: the payload
// for data, the whole frame for a control frame (an empty ping is not
// free), nothing for the close frame that ends the queue.
func cost(m *Message) int {
	switch m.kind {
	case kindPing, kindPong:
		return len(m.Payload) + 2
	case kindClose:
		return 0
	}
	return len(m.Payload)
}

// admitLocked counts n more bytes of data against the queue's bound. It
// refuses them once a close is queued, and on overflow starts the slow
// consumer's close; on refusal it has released o.mu.
func (o *outbound) admitLocked(n int) error {
	if o.closing || o.dead {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.bytes+o.stalledPongBytes+n > o.opts.SendQueueBytes {
		o.overflowLocked()
		o.mu.Unlock()
		o.obs.SlowConsumer()
		return ErrSlowConsumer
	}
	o.bytes += n
	return nil
}

// push queues a data message.
func (o *outbound) push(m *Message) error {
	n := len(m.Payload)
	o.mu.Lock()
	if err := o.admitLocked(n); err != nil {
		return err
	}
	if !m.queued {
		one := [1]*Message{m}
		if o.tryInlineLocked(one[:], n) {
			return nil
		}
	}
	o.items = append(o.items, m)
	o.startLocked()
	o.mu.Unlock()
	return nil
}

// pushAll queues data messages in order, as successive pushes would, but
// a quiet connection gets them in one write(2) from the caller, the way a
// writer goroutine coalesces a busy one's. The hub hands a busy channel's
// waiting broadcasts over this way (internal/hub/fanout.go).
func (o *outbound) pushAll(ms []*Message) error {
	if o.perMessage {
		// A stream whose clients parse each read on its own
		// (StreamServer.WritePerMessage) gets one write per message here
		// too.
		for _, m := range ms {
			if err := o.push(m); err != nil {
				return err
			}
		}
		return nil
	}
	n := 0
	for _, m := range ms {
		n += len(m.Payload)
	}
	o.mu.Lock()
	if err := o.admitLocked(n); err != nil {
		return err
	}
	if o.tryInlineLocked(ms, n) {
		return nil
	}
	o.items = append(o.items, ms...)
	o.startLocked()
	o.mu.Unlock()
	return nil
}

// tryInlineLocked writes ms (n bytes, already counted; none for none) from
// the caller's goroutine when the queue is quiet and the socket allows it
// (inline.go), together with the bytes hold left at the head of the
// queue. It reports whether it did; then o.mu has been released.
func (o *outbound) tryInlineLocked(ms []*Message, n int) bool {
	if o.writing {
		return false
	}
	// With nobody writing, the queue is empty or holds just what hold put
	// there: every other push starts the writer.
	var held *Message
	if len(o.items) > 0 {
		held = o.items[0]
	}
	rw, ok := o.framer.(rawWriter)
	if !ok {
		return false
	}
	rc := rw.rawConn()
	if rc == nil {
		return false
	}
	if held != nil {
		o.items = nil // the connection keeps no slice for it
		n += len(held.Payload)
	}
	o.writing = true // the writer role, given back by writeInline
	o.mu.Unlock()
	o.writeInline(rc, held, ms, n)
	return true
}

// hold queues p, raw bytes (the handshake's response), to go out in one
// write with the first message pushed, without starting a writer:
// flushHeld sends it alone if nothing was pushed meanwhile.
func (o *outbound) hold(p []byte) {
	o.mu.Lock()
	o.items = append(o.items, &Message{Payload: p, kind: kindRaw})
	o.bytes += len(p)
	o.mu.Unlock()
}

// flushHeld writes what hold queued, if no push took it along.
func (o *outbound) flushHeld() {
	o.mu.Lock()
	if o.writing || o.dead || len(o.items) == 0 {
		o.mu.Unlock()
		return
	}
	if !o.tryInlineLocked(nil, 0) {
		o.startLocked()
		o.mu.Unlock()
	}
}

// pushPing queues the server's own ping. It is not held to the byte bound:
// the server sends one per keep-alive interval, so it cannot pile up. A
// quiet connection's ping is written inline like data: a keep-alive round
// over every connection then starts no goroutines.
func (o *outbound) pushPing(m *Message) {
	o.mu.Lock()
	if o.closing || o.dead {
		o.mu.Unlock()
		return
	}
	n := cost(m)
	o.bytes += n
	one := [1]*Message{m}
	if o.tryInlineLocked(one[:], n) {
		return
	}
	o.items = append(o.items, m)
	o.startLocked()
	o.mu.Unlock()
}

// pushPong queues the answer to a peer's ping. Pongs are the peer's doing,
// so they count against the byte bound like data (an overflow closes the
// connection as a slow consumer), and an unsent pong is replaced by the
// newer one instead of queueing both.
func (o *outbound) pushPong(m *Message) {
	n := cost(m)
	o.mu.Lock()
	if o.closing || o.dead {
		o.mu.Unlock()
		return
	}
	// A replaced pong moves from bytes to stalledPongBytes, so the sum
	// grows by n either way.
	if o.bytes+o.stalledPongBytes+n > o.opts.SendQueueBytes {
		o.overflowLocked()
		o.mu.Unlock()
		o.obs.SlowConsumer()
		return
	}
	if o.pongAt >= 0 {
		old := cost(o.items[o.pongAt])
		o.items[o.pongAt] = m
		o.bytes += n - old
		o.stalledPongBytes += old
	} else {
		o.pongAt = int32(len(o.items))
		o.items = append(o.items, m)
		o.bytes += n
		o.startLocked()
	}
	o.mu.Unlock()
}

// pushClose queues the close message behind pending data and refuses any
// more. It reports false when a close was already queued.
func (o *outbound) pushClose(m *Message, cause error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing || o.dead {
		return false
	}
	o.closing = true
	o.cause = cause
	o.items = append(o.items, m)
	o.startLocked()
	return true
}

// overflowLocked handles a slow consumer: what it has not received yet is
// dropped (it could not be delivered in time anyway), a close frame takes
// its place, and the write deadline is pulled in so that a writer blocked on
// a full socket gives up within a second instead of WriteTimeout.
func (o *outbound) overflowLocked() {
	o.closing = true
	o.cause = ErrSlowConsumer
	for i := range o.items {
		o.bytes -= cost(o.items[i])
		o.items[i] = nil
	}
	o.pongAt = -1
	o.items = append(o.items[:0], closeMessage(o.opts.SlowConsumerCode, "slow consumer: send queue full"))
	_ = o.nc.SetWriteDeadline(time.Now().Add(time.Second))
	o.startLocked()
}

// startLocked starts the writer goroutine, for a queue that is busy (a
// message marked Queue, or one pushed while another write runs): there it
// coalesces waiting frames into one writev. A quiet queue is written inline
// instead (inline.go); the hub spreads a big fan-out's inline writes over
// GOMAXPROCS goroutines, so they still use every core.
func (o *outbound) startLocked() {
	if !o.writing && !o.dead {
		o.writing = true
		go o.writeLoop()
	}
}

// writeLoop drains the queue. Several waiting frames go out in one writev:
// for a fan-out of 2,000 that is one syscall per recipient per batch, not
// per message.
func (o *outbound) writeLoop() {
	var hdr []byte
	var bufs net.Buffers
	// spare is the previous batch's slice, handed back to the queue at the
	// next take, so steady traffic does not allocate. It lives here rather
	// than in outbound: an idle connection then keeps one slice, not two,
	// and wsConn fits the 320-byte size class.
	var spare []*Message
	for {
		o.mu.Lock()
		batch := o.items
		if len(batch) == 0 || o.dead {
			if cap(batch) == 0 && !o.dead {
				o.items = spare // the next push appends without allocating
			}
			o.writing = false
			o.mu.Unlock()
			return
		}
		o.items, spare = spare[:0], nil
		o.pongAt = -1
		o.mu.Unlock()

		// Headers go into one scratch slice sized up front, so the slices
		// taken from it stay valid while it is filled.
		if need := len(batch) * maxHeaderBytes; cap(hdr) < need {
			hdr = make([]byte, 0, need)
		}
		hdr, bufs = hdr[:0], bufs[:0]
		sent, wroteClose := 0, false
		for _, m := range batch {
			start := len(hdr)
			body := m.Payload
			if m.kind != kindRaw {
				hdr, body = o.framer.frame(hdr, m)
			}
			if len(hdr) > start {
				bufs = append(bufs, hdr[start:len(hdr):len(hdr)])
			}
			if len(body) > 0 {
				bufs = append(bufs, body)
			}
			sent += cost(m)
			if m.kind == kindClose {
				wroteClose = true
				break // nothing after a close frame may be written
			}
		}
		total := 0
		for _, b := range bufs {
			total += len(b)
		}
		err := o.nc.SetWriteDeadline(time.Now().Add(o.opts.WriteTimeout))
		if err == nil {
			if o.perMessage {
				for _, b := range bufs {
					if _, err = o.nc.Write(b); err != nil {
						break
					}
				}
			} else {
				err = writeBatch(o.nc, bufs, total)
			}
		}
		if err == nil {
			o.obs.BytesOut(total)
		}
		for i := range batch {
			batch[i] = nil
		}

		if err != nil {
			o.writeFailed(sent, err)
			return
		}
		o.mu.Lock()
		o.bytes -= sent
		o.stalledPongBytes = 0 // the peer is reading
		if cap(batch) <= 256 {
			spare = batch[:0]
		}
		if wroteClose {
			o.dead = true
			o.writing = false
		}
		o.mu.Unlock()
		if wroteClose {
			o.signalCloseDone()
			o.framer.closeWritten()
			return
		}
	}
}

// smallBatchBytes is the largest batch copied into one buffer and written
// with write(2) instead of writev(2). The net package keeps the iovec array
// of a socket's last writev for the socket's life: 56 B on every idle
// connection that was sent its greeting and a subscription confirmation
// (TestMemoryPerIdleConnection, internal/server). Copying 2 KiB costs well
// under the syscall itself.
const smallBatchBytes = 2048

// smallBatches lends the buffers of those copies.
var smallBatches = sync.Pool{New: func() any { b := make([]byte, 0, smallBatchBytes); return &b }}

// writeBatch writes bufs (total bytes) with one system call.
func writeBatch(nc net.Conn, bufs net.Buffers, total int) error {
	switch {
	case len(bufs) == 1:
		_, err := nc.Write(bufs[0])
		return err
	case total <= smallBatchBytes:
		bp := smallBatches.Get().(*[]byte)
		b := (*bp)[:0]
		for _, p := range bufs {
			b = append(b, p...)
		}
		_, err := nc.Write(b)
		*bp = b[:0]
		smallBatches.Put(bp)
		return err
	}
	_, err := bufs.WriteTo(nc)
	return err
}

func (o *outbound) signalCloseDone() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeFlushed {
		return
	}
	o.closeFlushed = true
	if o.closeDone != nil {
		close(o.closeDone)
	}
}

// markDead stops all further writes; called by teardown.
func (o *outbound) markDead() {
	o.mu.Lock()
	o.dead = true
	o.closing = true
	for i := range o.items {
		o.items[i] = nil
	}
	o.items = o.items[:0]
	o.pongAt = -1
	o.mu.Unlock()
}

// waitClose waits, bounded, for a queued close message to reach the socket.
func (o *outbound) waitClose(limit time.Duration) {
	o.mu.Lock()
	pending := o.closing && !o.dead && !o.closeFlushed
	if pending && o.closeDone == nil {
		o.closeDone = make(chan struct{})
	}
	done := o.closeDone
	o.mu.Unlock()
	if !pending {
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func (o *outbound) queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}

func (o *outbound) closeCause() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cause
}
