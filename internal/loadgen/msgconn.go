package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// msgConn is one client connection of a protocol other than Pusher (Damon
// over raw TCP or WebSocket, Decentraland ws-room): after its handshake one
// goroutine reads whole messages and hands them to onMsg; any goroutine may
// send.
type msgConn struct {
	ID    int
	nc    net.Conn
	clock *Clock
	// read returns the next message; it is only valid until the next call.
	read func() ([]byte, error)
	// frame returns the wire form of one outgoing message.
	frame func(msg []byte) ([]byte, error)
	// control answers protocol-level keep-alives (Damon's {"op":3}) and
	// reports whether msg was one.
	control func(c *msgConn, msg []byte) bool
	onMsg   func(c *msgConn, msg []byte)

	wmu    sync.Mutex
	closed atomic.Bool
	done   chan struct{}
}

// newWSMsgConn wraps an upgraded WebSocket client connection; op is the
// frame type of outgoing messages (text for Damon, binary for ws-room).
func newWSMsgConn(id int, nc net.Conn, br *bufio.Reader, clock *Clock, op ws.OpCode) *msgConn {
	c := &msgConn{ID: id, nc: nc, clock: clock, done: make(chan struct{})}
	var buf, frag []byte
	c.read = func() ([]byte, error) {
		return readWSMessage(br, &buf, &frag, func(op ws.OpCode, p []byte) error {
			f, err := maskedFrame(op, p)
			if err != nil {
				return err
			}
			return c.writeRaw(f)
		})
	}
	c.frame = func(msg []byte) ([]byte, error) { return maskedFrame(op, msg) }
	return c
}

// next reads one message during the handshake, before the read loop runs,
// with a deadline.
func (c *msgConn) next(deadline time.Time) ([]byte, error) {
	_ = c.nc.SetReadDeadline(deadline)
	defer func() { _ = c.nc.SetReadDeadline(time.Time{}) }()
	return c.read()
}

// start runs the read loop: keep-alives are answered, everything else goes
// to onMsg.
func (c *msgConn) start(onMsg func(c *msgConn, msg []byte)) {
	c.onMsg = onMsg
	go func() {
		defer close(c.done)
		for {
			msg, err := c.read()
			if err != nil {
				_ = c.nc.Close() // the connection is over either way
				return
			}
			if c.control != nil && c.control(c, msg) {
				continue
			}
			if c.onMsg != nil {
				c.onMsg(c, msg)
			}
		}
	}()
}

// Send writes one message.
func (c *msgConn) Send(msg []byte) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	f, err := c.frame(msg)
	if err != nil {
		return err
	}
	return c.writeRaw(f)
}

func (c *msgConn) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

// Close closes the socket (no closing handshake: at thousands of
// connections the teardown must not wait for the server).
func (c *msgConn) Close() {
	if c.closed.Swap(true) {
		return
	}
	_ = c.nc.Close()
}

// Alive reports whether the read loop still runs.
func (c *msgConn) Alive() bool {
	if c.closed.Load() {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// msgDialFunc opens connection id and completes the protocol's handshake.
type msgDialFunc func(ctx context.Context, id int) (*msgConn, error)

// msgPool opens and holds msgConns; its counters feed the report's
// connection summary like Pool's.
type msgPool struct {
	cfg   Common
	clock *Clock
	log   *slog.Logger

	mu    sync.Mutex
	conns []*msgConn

	ConnectLatency *Recorder
	ConnectErrors  errTally
	SetupErrors    errTally
	attempted      atomic.Int64
}

func newMsgPool(cfg Common, clock *Clock, log *slog.Logger) *msgPool {
	return &msgPool{cfg: cfg, clock: clock, log: log, ConnectLatency: NewRecorder()}
}

// setupError marks a handshake failure that happened after the socket
// connected (a refused identify or join), counted apart from dial errors.
type setupError struct{ err error }

func (e setupError) Error() string { return e.err.Error() }
func (e setupError) Unwrap() error { return e.err }

// ConnectN opens n connections with bounded concurrency and returns how
// many are held.
func (p *msgPool) ConnectN(ctx context.Context, n int, dial msgDialFunc) int {
	p.mu.Lock()
	base := len(p.conns)
	p.conns = append(p.conns, make([]*msgConn, n)...)
	p.mu.Unlock()
	sem := make(chan struct{}, p.cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			defer func() { <-sem }()
			p.attempted.Add(1)
			t0 := p.clock.Now()
			dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
			c, err := dial(dctx, id)
			cancel()
			if err != nil {
				var se setupError
				if errors.As(err, &se) {
					p.SetupErrors.add(err)
				} else {
					p.ConnectErrors.add(err)
				}
				return
			}
			now := p.clock.Now()
			p.ConnectLatency.Record(id, time.Duration(now-t0), now)
			p.mu.Lock()
			p.conns[id] = c
			p.mu.Unlock()
		}(base + i)
	}
	wg.Wait()
	return p.Held()
}

// Conns returns the live connections in id order.
func (p *msgPool) Conns() []*msgConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*msgConn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != nil && c.Alive() {
			out = append(out, c)
		}
	}
	return out
}

// Held counts live connections.
func (p *msgPool) Held() int { return len(p.Conns()) }

// CloseAll closes every connection and waits (bounded) for the readers.
func (p *msgPool) CloseAll(timeout time.Duration) {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	deadline := time.After(timeout)
	for _, c := range conns {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

// stats is the pool's share of the report's connection summary.
func (p *msgPool) stats() poolStats {
	return poolStats{attempted: p.Attempted(), connect: &p.ConnectErrors, setup: &p.SetupErrors, latency: p.ConnectLatency}
}

// Attempted is the number of dials started.
func (p *msgPool) Attempted() int64 { return p.attempted.Load() }

// setupErrorf makes a setupError: a handshake failure after the socket
// connected.
func setupErrorf(format string, args ...any) error { return setupError{fmt.Errorf(format, args...)} }
