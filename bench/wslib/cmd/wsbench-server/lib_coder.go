package main

import (
	"context"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// coder mode: websocket.Accept from a net/http handler, a Read loop in that
// handler goroutine, and a writer goroutine per connection fed by a
// buffered channel (the library's chat example uses 16). coder has no
// prepared-message API, so every recipient's Write frames the payload
// again; that is the library's normal use for fan-out.
//
// Like every mode: no heartbeats or per-write timeouts, and a full channel
// blocks the broadcaster instead of dropping the subscriber. Writes use
// context.Background because a cancellable context makes coder arm a
// context.AfterFunc per call; reads use the request context as the docs do.
type coderServer struct {
	h *hub[*coderClient]
}

type coderClient struct {
	conn *websocket.Conn
	send chan []byte
	done chan struct{}
}

func newCoder() server { return &coderServer{h: newHub[*coderClient]()} }

func (s *coderServer) serve(ln net.Listener) error {
	return http.Serve(ln, http.HandlerFunc(s.handle))
}

func (s *coderServer) handle(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c := &coderClient{conn: conn, send: make(chan []byte, 16), done: make(chan struct{})}
	s.h.add(c)
	go c.writer()
	defer func() {
		s.h.remove(c)
		close(c.done)
		_ = conn.CloseNow()
	}()
	ctx := r.Context()
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return
		}
	}
}

func (c *coderClient) writer() {
	ctx := context.Background()
	for {
		select {
		case p := <-c.send:
			if err := c.conn.Write(ctx, websocket.MessageText, p); err != nil {
				_ = c.conn.CloseNow()
				return
			}
		case <-c.done:
			return
		}
	}
}

func (s *coderServer) count() int { return s.h.count() }

func (s *coderServer) broadcast(msgs [][]byte) {
	members := s.h.snapshot()
	for _, p := range msgs {
		for _, c := range members {
			select {
			case c.send <- p:
			case <-c.done:
			}
		}
	}
}
