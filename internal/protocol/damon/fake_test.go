package damon

import (
	"net"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// fakeConn is an in-memory transport.Conn for fuzzing and benchmarks.
type fakeConn struct {
	id      uint64
	discard bool // benchmarks: count, keep nothing

	mu     sync.Mutex
	sent   []*transport.Message
	n      int
	closed bool
}

func (c *fakeConn) ID() uint64           { return c.id }
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fakeConn) Ping()                {}
func (c *fakeConn) LastRead() time.Time  { return time.Time{} }
func (c *fakeConn) QueuedBytes() int     { return 0 }

func (c *fakeConn) Send(m *transport.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return transport.ErrClosed
	}
	c.n++
	if !c.discard {
		c.sent = append(c.sent, m)
	}
	return nil
}

func (c *fakeConn) Close(uint16, string) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func (c *fakeConn) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.sent))
	for i, m := range c.sent {
		out[i] = string(m.Payload)
	}
	return out
}
