package main

import (
	"net"

	"github.com/lxzan/gws"
)

// gws mode: the library's own server (gws.NewServer + RunListener, no
// net/http), its event handler, and one goroutine per connection running
// ReadLoop. Broadcasts use gws.Broadcaster, the library's documented way to
// frame (and compress) a message once for many recipients; each Broadcast
// call pushes a write job to the connection's internal queue, whose worker
// goroutine exists only while jobs are pending and writes one frame per
// write(2).
//
// Options are left at their defaults (4 KiB read buffer held per
// connection, CheckUtf8Enabled=false) because that is how the library is
// normally used; the docs note the UTF-8 default.
type gwsServer struct {
	gws.BuiltinEventHandler // answers pings, ignores pongs
	h                       *hub[*gws.Conn]
}

func newGWS() server { return &gwsServer{h: newHub[*gws.Conn]()} }

func (s *gwsServer) OnOpen(c *gws.Conn) { s.h.add(c) }

func (s *gwsServer) OnClose(c *gws.Conn, err error) { s.h.remove(c) }

// OnMessage drops client data: the benchmark only measures server->client
// fan-out. Close returns the pooled buffer to gws.
func (s *gwsServer) OnMessage(c *gws.Conn, m *gws.Message) { _ = m.Close() }

func (s *gwsServer) serve(ln net.Listener) error {
	return gws.NewServer(s, nil).RunListener(ln)
}

func (s *gwsServer) count() int { return s.h.count() }

func (s *gwsServer) broadcast(msgs [][]byte) {
	members := s.h.snapshot()
	for _, p := range msgs {
		b := gws.NewBroadcaster(gws.OpcodeText, p)
		for _, c := range members {
			_ = b.Broadcast(c) // error only if c is closing; it leaves the hub itself
		}
		_ = b.Close()
	}
}
