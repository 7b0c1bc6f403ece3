//go:build !linux

package transport

import "errors"

// Poller parks idle connections without a goroutine each; it needs epoll,
// so elsewhere every connection keeps its reader goroutine.
type Poller struct{}

var errPollerClosed = errors.New("transport: poller closed")

// NewPoller returns nil: without epoll every connection keeps its reader
// goroutine, which is what a nil *Poller means everywhere.
func NewPoller() (*Poller, error) { return nil, nil }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Parked is always 0.
func (p *Poller) Parked() int { return 0 }

func (p *Poller) arm(*wsConn) error  { return errPollerClosed }
func (p *Poller) parkedDelta(int64)  {}
func (p *Poller) registered() int    { return 0 }
func (p *Poller) forget(*wsConn)     {}
func (p *Poller) unregister(*wsConn) {}

// readNow is never reached: connections park only where a Poller exists.
func (r *sockReader) readNow([]byte) (int, error) { return 0, errWouldBlock }
