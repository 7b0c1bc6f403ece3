package transport

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Inline writes: a data message pushed to an empty queue with no writer
// running is written by the pushing goroutine itself, with one
// non-blocking write(2), instead of by a writer goroutine started for it.
// Whatever the socket does not take at once (its buffer is full) goes to a
// writer goroutine, which waits for room as before; a push never blocks.
//
// This is the common case of every quiet connection: a broadcast, a reply
// to a client's own message. The writer
// goroutine per flush cost a goroutine start, two scheduler switches and
// a deadline timer per delivery. BenchmarkFanout/1000subs, one core
// (taskset -c 0): 11.0-11.2 µs per delivery written inline (unbatched)
// against 12.6-14.2 µs through a writer goroutine (unbatched-queued), with
// the bare-write floor at 11.8-12.9 µs in the same run. Several messages
// at once (SendAll: the broadcasts that waited in a busy channel, see
// internal/hub/fanout.go) go out inline in one write the same way.

// inlineMaxBytes is the largest frame written inline: it is copied into
// one pooled buffer so that header and body go out in one write(2)
// without an iovec array (which the net package would keep per socket).
// Bigger frames take the writer goroutine, whose cost is small beside
// the copy and the syscall for them.
const inlineMaxBytes = smallBatchBytes

// inlineWrite is one inline write's scratch, pooled so that the callback
// handed to RawConn.Write (bound once, to run) allocates nothing per call.
type inlineWrite struct {
	buf []byte
	n   int   // bytes the kernel took
	err error // the write's error; EAGAIN is not one (the rest goes to the writer)
	fn  func(fd uintptr) bool
}

var inlineWrites = sync.Pool{New: func() any {
	w := &inlineWrite{buf: make([]byte, 0, inlineMaxBytes)}
	w.fn = w.run
	return w
}}

// run writes buf without waiting: RawConn.Write calls it with the socket's
// write lock held (so a concurrent Close cannot hand the descriptor number
// to another socket mid-write) and, because it always returns true, never
// waits for the socket to become writable.
func (w *inlineWrite) run(fd uintptr) bool {
	for w.n < len(w.buf) {
		k, err := unix.Write(int(fd), w.buf[w.n:])
		if k > 0 {
			w.n += k
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true
		case err != nil:
			w.err = err
			return true
		case k <= 0:
			return true
		}
	}
	return true
}

// rawWriter is what a framer offers for inline writes: the socket's
// RawConn, or nil where there is none (TLS, a pipe, no epoll), and then
// every write goes through the writer goroutine.
type rawWriter interface {
	rawConn() syscall.RawConn
}

// writeInline writes held's raw bytes (nil for none) and then ms, n bytes
// between them, already counted in o.bytes, from the caller's goroutine in
// one write(2). The caller has set o.writing (it holds the writer role:
// nobody else writes to the socket until it is given back) and released
// o.mu.
func (o *outbound) writeInline(rc syscall.RawConn, held *Message, ms []*Message, n int) {
	w := inlineWrites.Get().(*inlineWrite)
	buf := w.buf[:0]
	if held != nil {
		buf = append(buf, held.Payload...)
	}
	for _, m := range ms {
		hdr, body := o.framer.frame(buf, m)
		if len(hdr)+len(body) > inlineMaxBytes {
			w.buf = buf[:0]
			inlineWrites.Put(w)
			o.handOff(n, held, ms)
			return
		}
		buf = append(hdr, body...)
	}
	w.buf = buf
	w.n, w.err = 0, nil
	err := rc.Write(w.fn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline of the writer goroutine's last batch has passed
		// while the connection was quiet; an inline write needs none.
		if err = o.nc.SetWriteDeadline(time.Time{}); err == nil {
			err = rc.Write(w.fn)
		}
	}
	if err == nil {
		err = w.err
	}
	wrote, total := w.n, len(w.buf)
	var rest []byte
	if err == nil && wrote < total {
		rest = append([]byte(nil), w.buf[wrote:]...)
	}
	w.buf = w.buf[:0]
	inlineWrites.Put(w)

	if err != nil {
		o.writeFailed(n, err)
		return
	}
	if wrote > 0 {
		o.obs.BytesOut(wrote)
	}
	if rest != nil {
		// The socket is full: the writer goroutine sends the rest once
		// there is room, ahead of anything queued meanwhile.
		o.handOff(n, &Message{Payload: rest, kind: kindRaw}, nil)
		return
	}
	o.mu.Lock()
	o.bytes -= n
	o.stalledPongBytes = 0 // the peer is reading
	o.writing = false
	if len(o.items) > 0 {
		o.startLocked() // pushed while this write ran
	}
	o.mu.Unlock()
}

// handOff gives the writer role to a new writer goroutine with held (nil
// for none) and then ms at the head of the queue, in order. n is what they
// counted in o.bytes until now; from now each counts its cost.
func (o *outbound) handOff(n int, held *Message, ms []*Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead {
		o.bytes -= n
		o.writing = false
		return
	}
	o.bytes -= n
	k := len(ms)
	if held != nil {
		k++
	}
	o.items = append(o.items, make([]*Message, k)...)
	copy(o.items[k:], o.items)
	head := o.items[:0]
	if held != nil {
		head = append(head, held)
	}
	head = append(head, ms...)
	for _, m := range head {
		o.bytes += cost(m)
	}
	if o.pongAt >= 0 {
		o.pongAt += int32(k)
	}
	go o.writeLoop()
}

// writeFailed ends the connection after a failed write of n counted bytes
// (by an inline write or the writer goroutine).
func (o *outbound) writeFailed(n int, err error) {
	o.mu.Lock()
	o.bytes -= n
	o.dead = true
	o.writing = false
	if o.cause == nil {
		o.cause = err
	}
	o.mu.Unlock()
	o.signalCloseDone()
	o.framer.closeSocket() // the reader sees the error and tears down
	o.framer.wakeReader()
}
