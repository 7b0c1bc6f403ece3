// Package transport moves bytes between the server and its clients.
//
// Every protocol (Pusher, Damon, Decentraland ws-room, ...) talks to a Conn
// and implements a Handler; it never sees WebSocket frames or sockets. Two
// kinds of Conn exist: a WebSocket connection (ws.go) and a raw byte stream
// (stream.go) for protocols that run over bare TCP. Both share the outbound
// path (outbound.go): a byte-bounded queue of pre-encoded Messages. A
// message sent to a quiet connection is written at once by the sender
// (inline.go); otherwise a writer goroutine, which exists only while
// something is queued, flushes the queue with one writev per batch.
package transport

import (
	"errors"
	"net"
	"time"
)

// Conn is one client connection as protocols see it. All methods are safe
// for concurrent use.
type Conn interface {
	// ID is unique among this process's live connections.
	ID() uint64
	RemoteAddr() net.Addr
	// Send queues m without blocking. It returns ErrClosed once the
	// connection is closing, and ErrSlowConsumer when m would push the
	// queue past its byte bound; the connection is then being closed.
	Send(m *Message) error
	// Close queues a close (a close frame with code and reason on
	// WebSocket) behind what is already queued, then ends the connection.
	Close(code uint16, reason string)
	// Ping sends a transport-level ping where the transport has one.
	Ping()
	// LastRead is when the last complete inbound message or control frame arrived.
	LastRead() time.Time
	// QueuedBytes is the number of bytes waiting to be written.
	QueuedBytes() int
}

// SendAll sends ms in order, as successive calls of c.Send would, and
// stops at the first error. A connection of this package with nothing
// queued takes them in one system call, where Send would make one each.
func SendAll(c Conn, ms []*Message) error {
	if len(ms) == 0 {
		return nil
	}
	if b, ok := c.(interface{ sendAll([]*Message) error }); ok {
		return b.sendAll(ms)
	}
	for _, m := range ms {
		if err := c.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// Handler receives a connection's inbound messages. HandleMessage and
// HandleClose are called from the connection's single reader goroutine,
// never concurrently for one connection.
type Handler interface {
	// HandleMessage gets one complete message. data is only valid until
	// the call returns.
	HandleMessage(data []byte, binary bool)
	// HandleClose is called exactly once, after the socket is closed.
	HandleClose(info CloseInfo)
}

// CloseInfo says why a connection ended.
type CloseInfo struct {
	// Code and Reason are from the close frame that ended the connection,
	// whichever side sent it first; Code is 0 when there was none.
	Code   uint16
	Reason string
	// ByServer is true when the server decided to close.
	ByServer bool
	// Err is the underlying cause for unclean ends (I/O error, timeout,
	// protocol violation, slow consumer).
	Err error
}

var (
	// ErrClosed is returned by Send on a connection that is closing.
	ErrClosed = errors.New("transport: connection closed")
	// ErrSlowConsumer means the client did not read fast enough and its
	// send queue passed its bound.
	ErrSlowConsumer = errors.New("transport: send queue full (slow consumer)")
	// ErrMessageTooBig is a message over Options.MaxMessageBytes.
	ErrMessageTooBig = errors.New("transport: message too big")
	// ErrProtocol is an RFC 6455 violation by the peer.
	ErrProtocol = errors.New("transport: websocket protocol violation")
)

// The defaults of Options; internal/config shows and uses the same values.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultSendQueueBytes  = 1 << 20
	DefaultWriteTimeout    = 10 * time.Second
)

// Options bound one connection. The zero value of a field means its default.
type Options struct {
	// MaxMessageBytes bounds one inbound message, after reassembly of
	// fragments and after decompression (default 64 KiB).
	MaxMessageBytes int
	// SendQueueBytes bounds what may wait to be written (default 1 MiB).
	SendQueueBytes int
	// WriteTimeout bounds one flush to the socket (default 10 s).
	WriteTimeout time.Duration
	// SlowConsumerCode is the close code sent to a client whose queue
	// overflowed (default 1008, policy violation; protocols set their own).
	SlowConsumerCode uint16
	// CloseTimeout is how long the server waits for the peer's close frame
	// after sending its own, before it drops the socket (default 2 s).
	CloseTimeout time.Duration
	// Observer, when set, hears about traffic for metrics.
	Observer Observer
}

// Observer hears about traffic; implementations must be cheap and must not block.
type Observer interface {
	MessageIn(bytes int)
	BytesOut(bytes int)
	SlowConsumer()
}

func (o Options) withDefaults() Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = DefaultSendQueueBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.SlowConsumerCode == 0 {
		o.SlowConsumerCode = 1008
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 2 * time.Second
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}

type nopObserver struct{}

func (nopObserver) MessageIn(int) {}
func (nopObserver) BytesOut(int)  {}
func (nopObserver) SlowConsumer() {}
