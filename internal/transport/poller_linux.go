//go:build linux

package transport

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller holds idle WebSocket connections in one epoll set, so that a
// connection with nothing to read costs no goroutine (its stack was 4 KiB
// of the 12.7 KB RSS per idle connection measured at 10,000; see
// docs/benchmarks.md). When the kernel reports a parked socket readable,
// the poller starts a reader goroutine for it, which reads until the socket
// would block between messages and parks it again.
//
// The runtime's own netpoller cannot be used for this: it only wakes
// goroutines that are already blocked in Read. Libraries that do it
// (gnet, cloudwego/netpoll) own the whole connection and its buffers; we
// need only the readiness wait, which is ~150 lines on x/sys/unix.
//
// One Poller serves any number of Upgraders; the server owns it and closes
// it after the connections are drained.
type Poller struct {
	epfd int
	stop int // eventfd that ends run

	// life is read-held around every epoll_ctl and write-held by Close to
	// set stopped, so no call reaches epfd once it may be closed (and its
	// number reused).
	life    sync.RWMutex
	stopped bool

	// slots holds the connections parked at least once and not torn down,
	// each at the index in its epoll event (with the low half of its id, to
	// tell a reused slot's new owner from a stale event). A map by id cost
	// 33 B per connection (TestMemoryPerIdleConnection in internal/server),
	// a slot 8.
	mu     sync.Mutex
	slots  []*wsConn
	free   []uint32 // indexes of nil slots
	closed bool     // by Close: no more registrations (under mu)

	parked atomic.Int64 // parked right now
	wakes  atomic.Int64 // readiness events that woke a connection; for tests

	done chan struct{}
}

// NewPoller creates the epoll set and starts its goroutine. Where epoll is
// missing it returns nil, nil; a nil *Poller means a reader goroutine per
// connection, and its Close does nothing.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd) // the eventfd error is the one to report
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// The stop eventfd is told apart from connections by its slot, which
	// no connection gets.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: stopSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stop, &ev); err != nil {
		// The epoll_ctl error is the one to report.
		_ = unix.Close(stop)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	p := &Poller{epfd: epfd, stop: stop, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// Close stops the poller. Connections still parked are woken so that each
// ends through its normal read path instead of being stranded.
func (p *Poller) Close() error {
	if p == nil {
		return nil
	}
	p.life.Lock()
	p.stopped = true
	p.life.Unlock()
	one := [8]byte{1}
	if _, err := unix.Write(p.stop, one[:]); err != nil {
		return fmt.Errorf("poller stop: %w", err)
	}
	<-p.done
	// A connection between arm and parking when woken here sees readerWoken,
	// looks again and finds the poller closed.
	p.mu.Lock()
	parked := make([]*wsConn, 0, len(p.slots)-len(p.free))
	for _, c := range p.slots {
		if c != nil {
			parked = append(parked, c)
		}
	}
	p.slots, p.free, p.closed = nil, nil, true
	p.mu.Unlock()
	for _, c := range parked {
		c.wake()
	}
	return errors.Join(unix.Close(p.stop), unix.Close(p.epfd))
}

// Parked reports how many connections are parked right now.
func (p *Poller) Parked() int { return int(p.parked.Load()) }

func (p *Poller) parkedDelta(d int64) { p.parked.Add(d) }

// registered is how many connections the poller knows; for tests.
func (p *Poller) registered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slots) - len(p.free)
}

var errPollerClosed = errors.New("transport: poller closed")

// stopSlot marks the stop eventfd's events; slots never reach it.
const stopSlot = -1

// arm asks for one readiness event on c's socket (EPOLLONESHOT: the set
// never wakes a connection that is already being read). epoll re-checks
// readiness when armed, so bytes that arrived before arm are not missed.
func (p *Poller) arm(c *wsConn) error {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.stopped {
		return errPollerClosed
	}
	op := unix.EPOLL_CTL_MOD
	if !c.registered {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return errPollerClosed
		}
		if n := len(p.free); n > 0 {
			c.slot = p.free[n-1]
			p.free = p.free[:n-1]
		} else {
			c.slot = uint32(len(p.slots))
			p.slots = append(p.slots, nil)
		}
		p.slots[c.slot] = c
		p.mu.Unlock()
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(c.slot),
		Pad:    int32(uint32(c.id)),
	}
	var err error
	// Control holds a reference on the descriptor, so a concurrent Close
	// cannot let the number be reused by another socket under us.
	cerr := c.src.rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if cerr == nil && err != nil {
		cerr = fmt.Errorf("epoll_ctl: %w", err)
	}
	if cerr != nil {
		if op == unix.EPOLL_CTL_ADD {
			p.forget(c) // not registered: teardown will not
		}
		return cerr
	}
	c.registered = true
	return nil
}

// unregister takes c's socket out of the epoll set (a socket that is not
// in it is left alone); wsConn.closeSocket calls it before every close of
// the socket, as the runtime's netpoller does (EPOLL_CTL_DEL before
// close). A socket closed while still in the set
// could otherwise stay open, unreferenced, in CLOSE-WAIT: since Linux
// 6.10 epoll holds a reference on each file while it polls it, so a close
// that lands then leaves the last reference to the poller's thread, which
// releases the socket (sending its FIN) only when it next returns to user
// space, and epoll_wait does not return for a readiness that EPOLLONESHOT
// has disarmed. Seen as a client whose close handshake never ended
// (tests/dcl, an immediate server close, about once in 500 connections).
func (p *Poller) unregister(c *wsConn) {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.stopped {
		return
	}
	_ = c.src.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// forget drops c once it is torn down (after unregister and the close).
func (p *Poller) forget(c *wsConn) {
	p.mu.Lock()
	if !p.closed && int(c.slot) < len(p.slots) && p.slots[c.slot] == c {
		p.slots[c.slot] = nil
		p.free = append(p.free, c.slot)
	}
	p.mu.Unlock()
}

// pollerWaitMS bounds each epoll_wait of the poller's thread.
const pollerWaitMS = 1000

func (p *Poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		// Not forever: a return to user space runs any file release the
		// kernel deferred to this thread (see unregister), should a socket
		// ever be closed while still in the set by a path that skipped
		// unregister; its FIN then waits at most this long. One wake-up
		// per second costs nothing.
		n, err := unix.EpollWait(p.epfd, events, pollerWaitMS)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range events[:n] {
			if events[i].Fd == stopSlot {
				return
			}
			slot, idLow := uint32(events[i].Fd), uint32(events[i].Pad)
			var c *wsConn
			p.mu.Lock()
			if int(slot) < len(p.slots) {
				c = p.slots[slot]
			}
			p.mu.Unlock()
			// nil or another id: torn down after the event was queued
			// (and the slot perhaps reused).
			if c != nil && uint32(c.id) == idLow {
				p.wakes.Add(1)
				c.wake()
			}
		}
	}
}

// readNow is one non-blocking read.
func (r *sockReader) readNow(p []byte) (int, error) {
	var n int
	var err error
	cerr := r.rc.Read(func(fd uintptr) bool {
		n, err = syscall.Read(int(fd), p)
		return true // never wait: that is the point of try mode
	})
	switch {
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
