package main

import (
	"io"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// gobwas mode: the library's low-level style. A raw net.Listener, the
// zero-copy ws.Upgrade on the accepted conn (its pooled buffers are returned
// right after the handshake), then one reader goroutine per connection that
// reads frame headers straight from the socket through wsutil.Reader, with
// no bufio, so an idle connection holds no I/O buffer at all.
//
// Writes follow the library's chat example: the broadcaster writes each
// message to each connection itself, under a per-connection mutex, through a
// pooled wsutil.Writer, i.e. the frame is built again for every recipient
// and costs one write(2) per delivery. There is no queue, so one stalled
// client would stall the broadcast; that is part of what this mode shows.
type gobwasServer struct {
	h *hub[*gobwasConn]
}

type gobwasConn struct {
	mu   sync.Mutex // serialises writes: broadcaster vs. control replies
	conn net.Conn
}

// Write lets control-frame replies (pong, close) share the write lock.
func (c *gobwasConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.Write(p)
}

func newGobwas() server { return &gobwasServer{h: newHub[*gobwasConn]()} }

func (s *gobwasServer) serve(ln net.Listener) error {
	return acceptLoop(ln, s.handle)
}

// maxClientMessage bounds what a client may send; the benchmark clients send
// nothing, but an unbounded reader is not how this should be written.
const maxClientMessage = 64 << 10

func (s *gobwasServer) handle(nc net.Conn) {
	defer func() { _ = nc.Close() }() // the connection is over; nothing to report to
	if _, err := ws.Upgrade(nc); err != nil {
		return
	}
	c := &gobwasConn{conn: nc}
	s.h.add(c)
	defer s.h.remove(c)

	ctl := wsutil.ControlFrameHandler(c, ws.StateServerSide)
	rd := wsutil.Reader{
		Source:         nc,
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: maxClientMessage,
		OnIntermediate: ctl,
	}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return
		}
		if hdr.OpCode.IsControl() {
			// ctl answers pings and echoes close (returning ClosedError).
			if err := ctl(hdr, &rd); err != nil {
				return
			}
			continue
		}
		// Read (not Discard) the message so that wsutil checks UTF-8;
		// io.Discard's ReadFrom uses a pooled buffer, nothing per conn.
		if _, err := io.Copy(io.Discard, &rd); err != nil {
			return
		}
	}
}

func (s *gobwasServer) count() int { return s.h.count() }

func (s *gobwasServer) broadcast(msgs [][]byte) {
	members := s.h.snapshot()
	for _, p := range msgs {
		for _, c := range members {
			c.mu.Lock()
			w := wsutil.GetWriter(c.conn, ws.StateServerSide, ws.OpText, len(p))
			_, err := w.Write(p)
			if err == nil {
				err = w.Flush()
			}
			wsutil.PutWriter(w)
			c.mu.Unlock()
			if err != nil {
				_ = c.conn.Close() // the reader notices and unsubscribes
			}
		}
	}
}
