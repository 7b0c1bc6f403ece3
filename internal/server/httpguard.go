package server

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unauthenticated HTTP clients must not be able to hold the process's file
// descriptors (docs/reliability.md, "HTTP bodies and descriptors"). Two
// bounds do it:
//
//   - bodyDeadline: a request body must arrive within limits.http_body_timeout
//     of its headers (headers are bounded by limits.handshake_timeout, idle
//     keep-alive connections by the server's IdleTimeout);
//   - connGuard: at most limits.max_http_connections connections that are
//     still plain HTTP (not yet, or never, a WebSocket) are open; one more
//     closes the oldest. A request that is served arrives on a new
//     connection and is answered in well under a millisecond, so it wins
//     against clients that only hold connections open, and /healthz keeps
//     answering. WebSockets leave the count when they are hijacked, so
//     established ones are never touched.

// bodyDeadline gives a request that has a body (Content-Length > 0 or
// chunked) a read deadline of timeout from now. Requests without a body
// (every WebSocket handshake) are left alone: nothing of theirs is read by
// the handler, and the next request on the connection is bounded by the
// server's header and idle timeouts again.
func bodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}

// connGuard bounds the open connections an http.Server holds for plain
// HTTP. Install ConnState as the server's ConnState hook.
type connGuard struct {
	max  int
	shed prometheus.Counter

	mu    sync.Mutex
	order list.List // oldest first; values are net.Conn
	conns map[net.Conn]*list.Element
}

func newConnGuard(max int, shed prometheus.Counter) *connGuard {
	return &connGuard{max: max, shed: shed, conns: map[net.Conn]*list.Element{}}
}

// ConnState tracks a connection from StateNew until it is hijacked (a
// WebSocket now, bounded by its protocol) or closed. A new connection over
// the bound closes the oldest tracked one.
func (g *connGuard) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		g.mu.Lock()
		g.conns[c] = g.order.PushBack(c)
		var victim net.Conn
		if g.order.Len() > g.max {
			victim = g.order.Remove(g.order.Front()).(net.Conn)
			delete(g.conns, victim)
		}
		g.mu.Unlock()
		if victim != nil {
			g.shed.Inc()
			// Inline, on the accept loop (where StateNew is reported): Close
			// returns once the descriptor is really gone, after the victim's
			// blocked read has let go of it, so accepting waits for the
			// descriptor it replaces. That is the backpressure: with a
			// goroutine per close, a fast enough client reached EMFILE.
			// A TLS connection is closed under its TLS layer, which would
			// otherwise try to write an alert to a peer that may not read.
			if tc, ok := victim.(*tls.Conn); ok {
				victim = tc.NetConn()
			}
			_ = victim.Close()
		}
	case http.StateHijacked, http.StateClosed:
		g.mu.Lock()
		if e, ok := g.conns[c]; ok {
			g.order.Remove(e)
			delete(g.conns, c)
		}
		g.mu.Unlock()
	}
}

// Len is the number of tracked connections.
func (g *connGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.order.Len()
}
