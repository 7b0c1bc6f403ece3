package transport

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StreamServer serves a protocol that runs over a bare byte stream (TCP),
// such as Damon's master socket. Messages go out as their raw payload bytes,
// with the same bounded queue and writev flush as WebSocket; inbound bytes
// reach the handler as they arrive (HandleMessage with binary=true), and the
// protocol does its own framing.
type StreamServer struct {
	IDs     *IDSource
	Options Options
	// ReadBufferBytes sizes each read (default 4 KiB).
	ReadBufferBytes int
	// WritePerMessage writes each queued message with its own write call
	// instead of one writev per batch. Protocols without framing need it
	// when their clients parse each read on its own (Damon's SocketClient
	// calls JSON.parse per 'data' event and loses coalesced messages). It
	// costs a syscall per message, so it is off unless asked for.
	WritePerMessage bool

	initOnce sync.Once
	opts     Options
	conns    sync.WaitGroup
	// bufs lends read buffers only while the kernel has bytes for them
	// (streamread.go): an idle connection holds none.
	bufs sync.Pool
}

func (s *StreamServer) init() {
	s.initOnce.Do(func() {
		s.opts = s.Options.withDefaults()
		if s.IDs == nil {
			s.IDs = &IDSource{}
		}
		if s.ReadBufferBytes <= 0 {
			s.ReadBufferBytes = 4096
		}
		size := s.ReadBufferBytes
		s.bufs.New = func() any { b := make([]byte, size); return &b }
	})
}

// Serve accepts connections on ln until it is closed.
func (s *StreamServer) Serve(ln net.Listener, newHandler func(Conn) Handler) error {
	s.init()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.Start(nc, newHandler)
	}
}

// Start runs one accepted connection.
func (s *StreamServer) Start(nc net.Conn, newHandler func(Conn) Handler) Conn {
	s.init()
	c := &streamConn{id: s.IDs.Next(), nc: nc, srv: s}
	if sc, ok := nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn() // nil on error: every write goes through the writer
	}
	c.out.init(nc, &s.opts, s.opts.Observer, c)
	c.out.perMessage = s.WritePerMessage
	c.lastRead.Store(time.Now().UnixNano())
	c.handler = newHandler(c)
	s.conns.Add(1)
	go c.readLoop()
	return c
}

type streamConn struct {
	id       uint64
	nc       net.Conn
	rc       syscall.RawConn // for inline writes (inline.go); nil without one
	srv      *StreamServer
	out      outbound
	handler  Handler
	lastRead atomic.Int64
	closing  atomic.Bool
}

func (c *streamConn) ID() uint64                  { return c.id }
func (c *streamConn) RemoteAddr() net.Addr        { return c.nc.RemoteAddr() }
func (c *streamConn) Send(m *Message) error       { return c.out.push(m) }
func (c *streamConn) sendAll(ms []*Message) error { return c.out.pushAll(ms) }
func (c *streamConn) Ping()                       {}
func (c *streamConn) LastRead() time.Time         { return time.Unix(0, c.lastRead.Load()) }
func (c *streamConn) QueuedBytes() int            { return c.out.queued() }

// Close flushes what is queued, then closes the socket; code and reason
// have no meaning on a bare stream.
func (c *streamConn) Close(uint16, string) {
	c.closing.Store(true)
	c.out.pushClose(&Message{kind: kindClose}, nil)
}

func (c *streamConn) frame(hdr []byte, m *Message) ([]byte, []byte) {
	if m.kind == kindClose || m.control() {
		return hdr, nil
	}
	return hdr, m.Payload
}

func (c *streamConn) rawConn() syscall.RawConn { return c.rc }

// received hands the handler what one read brought.
func (c *streamConn) received(p []byte) {
	c.lastRead.Store(time.Now().UnixNano())
	c.srv.opts.Observer.MessageIn(len(p))
	c.handler.HandleMessage(p, true)
}

// readOwned reads into a buffer of the connection's own, for a socket
// without a RawConn (TLS): until the socket fails or closes.
func (c *streamConn) readOwned() error {
	buf := make([]byte, c.srv.ReadBufferBytes)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.received(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

func (c *streamConn) closeWritten() { c.closeSocket() }

// closeSocket implements framer.
func (c *streamConn) closeSocket() { _ = c.nc.Close() }

// wakeReader implements framer: a stream's reader is always blocked on the
// socket, so closing it is enough.
func (c *streamConn) wakeReader() {}

func (c *streamConn) readLoop() {
	defer c.srv.conns.Done()
	var err error
	if c.rc != nil {
		err = c.readPooled()
	} else {
		err = c.readOwned()
	}
	c.out.waitClose(c.srv.opts.CloseTimeout)
	_ = c.nc.Close()
	c.out.markDead()
	info := CloseInfo{ByServer: c.closing.Load()}
	if cause := c.out.closeCause(); cause != nil {
		info.Err = cause
	} else if !errors.Is(err, io.EOF) && !c.closing.Load() {
		info.Err = err
	}
	c.handler.HandleClose(info)
}
