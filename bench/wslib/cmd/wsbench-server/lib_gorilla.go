package main

import (
	"log"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// gorilla mode, shaped like the library's chat example: net/http serves the
// upgrade, then each connection gets a reader goroutine and a writer
// goroutine fed by a buffered channel (the example's 256). Broadcasts use
// websocket.PreparedMessage, gorilla's API for framing a message once for
// many recipients.
//
// Two deliberate departures from the example, applied to every mode: no
// ping ticker / deadlines (heartbeats are not what is measured), and a full
// channel blocks the broadcaster instead of dropping the client (so every
// message is delivered and deliveries/s is comparable).
//
// Upgrader buffer sizes are the defaults: gorilla then reuses the 4 KiB
// bufio buffers net/http allocated for the request, and keeps them for the
// life of the connection.
type gorillaServer struct {
	h  *hub[*gorillaClient]
	up websocket.Upgrader
}

type gorillaClient struct {
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
	done chan struct{} // closed when the reader exits
}

func newGorilla() server { return &gorillaServer{h: newHub[*gorillaClient]()} }

func (s *gorillaServer) serve(ln net.Listener) error {
	return http.Serve(ln, http.HandlerFunc(s.handle))
}

func (s *gorillaServer) handle(w http.ResponseWriter, r *http.Request) {
	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade already answered with an HTTP error
	}
	c := &gorillaClient{
		conn: conn,
		send: make(chan *websocket.PreparedMessage, 256),
		done: make(chan struct{}),
	}
	s.h.add(c)
	go c.writePump()
	go c.readPump(s.h)
	// The handler returns, as in the chat example, so net/http can release
	// its per-request state; the hijacked conn lives on in the pumps.
}

func (c *gorillaClient) readPump(h *hub[*gorillaClient]) {
	defer func() {
		h.remove(c)
		close(c.done)
		_ = c.conn.Close()
	}()
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
	}
}

func (c *gorillaClient) writePump() {
	for {
		select {
		case pm := <-c.send:
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				_ = c.conn.Close() // wakes the reader, which cleans up
				return
			}
		case <-c.done:
			return
		}
	}
}

func (s *gorillaServer) count() int { return s.h.count() }

func (s *gorillaServer) broadcast(msgs [][]byte) {
	members := s.h.snapshot()
	for _, p := range msgs {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, p)
		if err != nil {
			log.Printf("gorilla: prepare: %v", err)
			return
		}
		for _, c := range members {
			select {
			case c.send <- pm:
			case <-c.done:
			}
		}
	}
}
