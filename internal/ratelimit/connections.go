package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Connections limits how fast each client address may open connections.
// A nil *Connections limits nothing.
type Connections struct {
	table   *Keyed[netip.Addr]
	source  Source
	refused func(listener string, client netip.Addr)
}

// ConnectionOptions configure NewConnections.
type ConnectionOptions struct {
	Rate Rate
	// MaxAddresses bounds the addresses remembered (default 65536).
	MaxAddresses int
	// Source says which address an HTTP request counts against.
	Source Source
	// Refused, when set, hears of every refusal with the listener's name
	// ("websocket" for upgrades, or what Listener was given) and the
	// client address. It must be cheap: a flood calls it for every attempt.
	Refused func(listener string, client netip.Addr)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewConnections returns a limiter, or nil when the rate is off.
func NewConnections(o ConnectionOptions) *Connections {
	t := NewKeyed[netip.Addr](o.Rate, Options{MaxKeys: o.MaxAddresses, Now: o.Now})
	if t == nil {
		return nil
	}
	if o.Refused == nil {
		o.Refused = func(string, netip.Addr) {}
	}
	return &Connections{table: t, source: o.Source, refused: o.Refused}
}

// Allow counts one new connection from a. An unreadable address (the zero
// Addr) shares one bucket.
func (c *Connections) Allow(a netip.Addr) (bool, time.Duration) {
	if c == nil {
		return true, 0
	}
	return c.table.Allow(bucketKey(a))
}

// Middleware refuses WebSocket upgrade requests over the limit with 429
// Too Many Requests and Retry-After, before the handler does any upgrade
// work, and closes the HTTP connection after the answer. Other requests
// pass uncounted.
func (c *Connections) Middleware(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !transport.IsUpgradeRequest(r.Header) {
			next.ServeHTTP(w, r)
			return
		}
		client := c.source.Addr(r)
		ok, wait := c.Allow(client)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		c.refused("websocket", client)
		secs := RetryAfterSeconds(wait)
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(secs))
		h.Set("Connection", "close")
		http.Error(w, fmt.Sprintf("too many new connections from your address; retry in %d s", secs), http.StatusTooManyRequests)
	})
}

// Listener wraps ln so that Accept closes, at once and with a reset, the
// connections of an address over the limit, and returns only the others.
// name labels the refusals. Raw TCP carries no forwarding header: the peer
// address is the client.
func (c *Connections) Listener(ln net.Listener, name string) net.Listener {
	if c == nil {
		return ln
	}
	return &listener{Listener: ln, c: c, name: name}
}

type listener struct {
	net.Listener
	c    *Connections
	name string
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := addrOf(conn.RemoteAddr())
		if ok, _ := l.c.Allow(client); ok {
			return conn, nil
		}
		l.c.refused(l.name, client)
		if tc, ok := conn.(*net.TCPConn); ok {
			// A reset leaves no TIME_WAIT behind on our side, which a
			// flood would otherwise pile up.
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}
}
