// Package wsaccept takes WebSocket upgrade requests off net/http's path.
//
// Serve accepts on a listener itself, reads each connection's request head
// into a pooled buffer and, when it is a WebSocket upgrade in the common
// shape (parseHead), calls the http.Server's handler with a request built
// from it and a ResponseWriter whose Hijack hands out the socket. Every
// other connection (the HTTP API, health checks, anything parseHead does
// not take) is passed to the http.Server with the bytes already read, and
// net/http serves it as if it had accepted it; a TLS connection is passed
// before anything is read.
//
// Why: in a 10,000-connection storm net/http's own work per upgrade (its
// connection goroutine and state, the 4 KiB bufio reader and writer, the
// textproto reading, and the request context) was about a fifth of the
// server's CPU and 55% of the bytes allocated per connection (pprof;
// docs/performance.md, fifth round, has the before and after).
package wsaccept

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// A head is read into a pooled buffer of headBufferBytes, which holds what
// Node, Go and Python clients send (200-400 B) and a browser's without
// large cookies; a longer one moves to a buffer of maxHeadBytes made for
// it, and a head longer still goes to net/http, whose MaxHeaderBytes
// applies. The pooled buffers are small because the pool keeps up to one
// per connection in flight through a storm, and idle servers keep them:
// 4 KiB ones cost 40-60 B of RSS per idle connection at 10,000 (1,988-
// 2,223 against 1,969-1,972 B with 1 KiB, three runs each).
const (
	headBufferBytes = 1024
	maxHeadBytes    = 4096
)

var headBuffers = sync.Pool{New: func() any { return new([headBufferBytes]byte) }}

// Serve accepts connections on ln until srv is shut down or closed (or ln
// fails), with srv's Handler, ReadHeaderTimeout, ConnState and ErrorLog
// applying to both paths. ConnState sees the connection accepted here on
// both (Serve wraps srv.ConnState for that), reported new on the accept
// loop as net/http does. TLS connections (a tls.NewListener's) go to
// net/http unread, as they come: only plain-text upgrades take the short
// path (a TLS socket cannot park in the transport's poller anyway). It
// returns what srv.Serve returns: http.ErrServerClosed after Shutdown or
// Close.
func Serve(ln net.Listener, srv *http.Server) error {
	a := &acceptor{srv: srv, feed: newFeed(ln), hook: srv.ConnState}
	if a.hook != nil {
		// A connection handed to net/http is reported as the one accepted
		// here, which the hook saw as new already: a hook that counts
		// connections (the server's plain-HTTP cap) counts it once, and
		// without a gap while it passes from here to net/http.
		srv.ConnState = func(c net.Conn, st http.ConnState) {
			if rc, ok := c.(*replayConn); ok {
				if st == http.StateNew {
					return
				}
				c = rc.Conn
			}
			a.hook(c, st)
		}
	}
	a.base = context.WithValue(context.Background(), http.ServerContextKey, srv)
	if srv.ErrorLog != nil {
		a.logf = srv.ErrorLog.Printf
	} else {
		a.logf = func(format string, args ...any) { slog.Error(fmt.Sprintf(format, args...)) }
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(a.feed) }()
	err := a.acceptLoop(ln)
	_ = a.feed.Close() // srv.Serve returns now if it has not yet
	serveErr := <-served
	if errors.Is(serveErr, http.ErrServerClosed) || err == nil {
		return serveErr
	}
	return err
}

type acceptor struct {
	srv  *http.Server
	feed *feed
	base context.Context
	hook func(net.Conn, http.ConnState) // srv's own ConnState
	logf func(format string, args ...any)
}

// acceptLoop accepts until ln is closed (nil: by the feed, that is by srv)
// or fails. Temporary errors (EMFILE) back off as net/http's loop does.
func (a *acceptor) acceptLoop(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if a.feed.closed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				a.logf("wsaccept: accept error: %v; retrying in %v", err, delay)
				select {
				case <-time.After(delay):
				case <-a.feed.done:
					return nil
				}
				continue
			}
			return err
		}
		delay = 0
		if _, ok := c.(*tls.Conn); ok {
			// Encrypted: net/http reads it (handshake, r.TLS) and reports
			// its states itself, as if it had accepted it.
			if !a.feed.give(c) {
				_ = c.Close()
			}
			continue
		}
		// StateNew on this loop, as net/http reports it: a ConnState hook
		// that closes an older connection to admit this one (the server's
		// plain-HTTP cap) then holds accepting until the descriptor is
		// free, which is the cap's backpressure.
		a.connState(c, http.StateNew)
		go a.serveConn(c)
	}
}

// isTemporary reports the accept errors that pass (out of descriptors,
// aborted handshakes), as net/http treats them.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// serveConn reads c's request head and either upgrades it here or passes
// it to net/http.
func (a *acceptor) serveConn(c net.Conn) {
	defer func() {
		if p := recover(); p != nil {
			a.logf("wsaccept: panic reading a request from %v: %v\n%s", c.RemoteAddr(), p, debug.Stack())
			a.connState(c, http.StateClosed)
			_ = c.Close()
		}
	}()
	if d := a.srv.ReadHeaderTimeout; d > 0 {
		_ = c.SetReadDeadline(time.Now().Add(d))
	}
	pooled := headBuffers.Get().(*[headBufferBytes]byte)
	buf := pooled[:]
	release := func() {
		if pooled != nil {
			headBuffers.Put(pooled)
			pooled = nil
		}
	}
	defer release()
	n, end := 0, -1
	for end < 0 {
		if n == len(buf) {
			if n >= maxHeadBytes {
				break
			}
			buf = append(make([]byte, 0, maxHeadBytes), buf[:n]...)[:maxHeadBytes]
			release()
		}
		m, err := c.Read(buf[n:])
		n += m
		if end = headEnd(buf[:n]); end >= 0 {
			break
		}
		if err != nil {
			// No complete head in time, or the client left: net/http
			// closes such a connection without an answer too.
			a.connState(c, http.StateClosed)
			_ = c.Close()
			return
		}
	}
	var h head
	ok := false
	if end >= 0 {
		s := string(buf[:end]) // every string of the request shares this copy
		h, ok = parseHead(s)
	}
	if !ok {
		read := string(buf[:n])
		release()
		a.handOff(c, read)
		return
	}
	rest := string(buf[end:n]) // the client's first frames, if it sent them at once
	release()
	_ = c.SetReadDeadline(time.Time{}) // as net/http leaves it once the head is read
	a.serveUpgrade(c, h, rest)
}

// handOff gives c to net/http with the bytes already read.
func (a *acceptor) handOff(c net.Conn, read string) {
	// net/http sets its own header deadline from when it starts reading.
	_ = c.SetReadDeadline(time.Time{})
	if !a.feed.give(&replayConn{Conn: c, read: read}) {
		a.connState(c, http.StateClosed)
		_ = c.Close()
	}
}

// serveUpgrade runs the handler for an upgrade request, as net/http's
// connection would: a request context cancelled when the handler returns,
// panics recovered and logged, and unless the handler hijacked the
// connection, its response written (none after a panic) and the
// connection closed.
func (a *acceptor) serveUpgrade(c net.Conn, h head, rest string) {
	ctx, cancel := context.WithCancel(context.WithValue(a.base, http.LocalAddrContextKey, c.LocalAddr()))
	defer cancel()
	r := (&http.Request{
		Method:     http.MethodGet,
		URL:        h.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h.header,
		Body:       http.NoBody,
		Host:       h.host,
		RemoteAddr: c.RemoteAddr().String(),
		RequestURI: h.target,
	}).WithContext(ctx)
	w := &response{a: a, c: c, rest: rest}
	defer func() {
		p := recover()
		if p != nil && p != http.ErrAbortHandler {
			a.logf("wsaccept: panic serving %v: %v\n%s", r.RemoteAddr, p, debug.Stack())
		}
		switch {
		case w.hj: // the connection is the hijacker's, panic or not
			return
		case p != nil:
			_ = c.Close() // as net/http: no answer
		default:
			w.finish()
		}
		a.connState(c, http.StateClosed)
	}()
	a.srv.Handler.ServeHTTP(w, r)
}

func (a *acceptor) connState(c net.Conn, st http.ConnState) {
	if a.hook != nil {
		a.hook(c, st)
	}
}

// feed is the listener srv.Serve accepts from: the connections handed
// off, in the order they came. Closing it (srv does, on Shutdown or Close)
// closes the real listener.
type feed struct {
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

func newFeed(ln net.Listener) *feed {
	return &feed{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (f *feed) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}

func (f *feed) Close() error {
	f.once.Do(func() {
		close(f.done)
		f.err = f.ln.Close()
	})
	return f.err
}

func (f *feed) Addr() net.Addr { return f.ln.Addr() }

func (f *feed) closed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// give passes c to srv.Serve; false when the feed is closed.
func (f *feed) give(c net.Conn) bool {
	select {
	case f.conns <- c:
		return true
	case <-f.done:
		return false
	}
}

// replayConn is a connection whose first bytes were already read here:
// Read returns them first. It keeps the socket's SyscallConn and
// CloseWrite reachable (a WebSocket upgraded later on a kept-alive
// connection parks through the former; net/http uses the latter).
type replayConn struct {
	net.Conn
	read string
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.read) > 0 {
		n := copy(p, c.read)
		c.read = c.read[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok && c.read == "" {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
