// Package damon serves the Damon "master socket" protocol
// (Damon-Org/Socket; see docs/damon.md) on Switchboard's
// hub, over raw TCP and over WebSocket. Both front-ends share one session
// type; they differ only in framing: TCP bytes go through wire.Decoder
// (back-to-back documents, split documents, whitespace between them), a
// WebSocket text message is one document.
//
// Routing goes through the hub in namespace "damon":
//
//	global          every connection (with require_identify: identified ones)
//	group:<key>     identified members of a group (key: wire.Value.MapKey)
//	direct:<uuid>   one connection, by the uuid it got at accept time
//
// so a cluster engine carries Damon traffic between nodes like any other.
// How an EVENT gets a fresh id per recipient without being re-encoded per
// recipient is explained in fanout.go.
//
// Differences from the reference are listed in docs/damon.md; the main one
// is that GROUP reaches the group's identified members (the reference never
// registers group membership, so GROUP reaches nobody there).
package damon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Namespace is the hub namespace of all Damon traffic.
const Namespace = "damon"

// Hub channel names.
const (
	chanGlobal      = "global"
	chanGroupPrefix = "group:"
	chanDirectPrfx  = "direct:"
)

// Options configure a Server. A zero PingInterval or MaxDocumentBytes takes
// the reference's default (30 s, 32768 bytes).
type Options struct {
	Hub *hub.Hub
	// Metrics receives the connection counters and the Damon counters
	// (nil: a private registry, for tests).
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// IDs numbers transport connections (nil: a private source).
	IDs *transport.IDSource
	// Poller parks idle WebSocket connections (nil: a goroutine each).
	Poller *transport.Poller
	// Transport bounds each connection's send queue and writes.
	// MaxMessageBytes is ignored: the WebSocket limit is derived from
	// MaxDocumentBytes.
	Transport transport.Options
	// Compression offers permessage-deflate on the WebSocket endpoint.
	Compression bool

	// Listen is the raw TCP address; "" serves no TCP listener.
	Listen string
	// WrapListener, when set, wraps the TCP listener (the server's
	// per-address connection rate limit closes refused connections there).
	WrapListener func(net.Listener) net.Listener
	// WebSocketPath is where Mount serves the protocol over WebSocket on
	// the main listener; "" mounts nothing.
	WebSocketPath string
	// Token is the shared IDENTIFY secret; "" lets nobody identify.
	Token string
	// PingInterval is the global heartbeat tick (default 30 s).
	PingInterval time.Duration
	// MaxDocumentBytes bounds one inbound document (default 32768).
	MaxDocumentBytes int
	// RequireIdentify: unidentified connections may not send EVENT/REPLY
	// and receive nothing.
	RequireIdentify bool

	// Failed IDENTIFYs are throttled per source address (IPv4 address or
	// IPv6 /64); see throttle.go and docs/damon.md. IdentifyFailBurst
	// failures at once (default 10; negative: no throttling), then one
	// more every IdentifyFailInterval (default 1 s); at most
	// IdentifyAddresses addresses are tracked (default 65536).
	IdentifyFailBurst    int
	IdentifyFailInterval time.Duration
	IdentifyAddresses    int
	// Now is the throttle's clock (tests); default time.Now.
	Now func() time.Time

	// manualHeartbeat (tests in this package): no ticker; the test calls
	// Server.tick to step the heartbeat.
	manualHeartbeat bool
}

// Server is the Damon front-end: a TCP listener, a WebSocket handler and
// the heartbeat. It is a frontend.FrontEnd.
type Server struct {
	opts     Options
	log      *slog.Logger
	limits   wire.Limits
	pingMS   int64
	stream   transport.StreamServer
	upgrader transport.Upgrader
	obs      *metrics.Conn
	m        *counters
	idLim    *identifyLimiter // nil: failed IDENTIFYs are not throttled

	sessions connset.Set[*session]
	mu       sync.Mutex // guards ln and started
	ln       net.Listener
	started  bool
	tickBuf  []*session // reused by the heartbeat; heartbeat goroutine only
}

var _ frontend.FrontEnd = (*Server)(nil)

// NewServer returns a Server; Mount puts its WebSocket route on the main
// listener and Start runs the rest.
func NewServer(opts Options) (*Server, error) {
	if opts.Hub == nil {
		return nil, errors.New("damon: a hub is required")
	}
	// Damon has no occupancy events or channel queries: a connection's
	// subscriptions (global, its groups, its direct channel) cost the
	// cluster's store nothing.
	opts.Hub.CountLocally(Namespace)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.MaxDocumentBytes <= 0 {
		opts.MaxDocumentBytes = wire.DefaultMaxDocumentSize
	}
	if opts.IDs == nil {
		opts.IDs = &transport.IDSource{}
	}
	if opts.IdentifyFailBurst == 0 {
		opts.IdentifyFailBurst = DefaultIdentifyFailBurst
	}
	if opts.IdentifyFailInterval <= 0 {
		opts.IdentifyFailInterval = DefaultIdentifyFailInterval
	}
	if opts.IdentifyAddresses <= 0 {
		opts.IdentifyAddresses = DefaultIdentifyAddresses
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := opts.Metrics
	if m == nil {
		m = metrics.New()
	}
	cnt, err := newCounters(m)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger.With("protocol", "damon"),
		limits: wire.Limits{MaxDocumentSize: opts.MaxDocumentBytes},
		pingMS: opts.PingInterval.Milliseconds(),
		obs:    m.ForConn("damon", Namespace),
		m:      cnt,
		idLim:  newIdentifyLimiter(opts.IdentifyFailBurst, opts.IdentifyFailInterval, opts.IdentifyAddresses, opts.Now),
	}
	to := opts.Transport
	to.Observer = s.obs
	to.MaxMessageBytes = 0
	// One write per document: SocketClient JSON.parses each TCP read and
	// loses documents that arrive coalesced (docs/damon.md).
	s.stream = transport.StreamServer{IDs: opts.IDs, Options: to, WritePerMessage: true}
	// A WebSocket message is read whole before we see it. Up to twice the
	// document limit it reaches us and gets MESSAGE_TOO_BIG like on TCP;
	// beyond that the transport refuses it with close code 1009.
	wsOpts := to
	wsOpts.MaxMessageBytes = max(2*opts.MaxDocumentBytes, 64<<10)
	s.upgrader = transport.Upgrader{IDs: opts.IDs, Poller: opts.Poller, Options: wsOpts, Compression: opts.Compression}
	return s, nil
}

// Name implements frontend.FrontEnd.
func (s *Server) Name() string { return "damon" }

// Mount serves GET WebSocketPath, when set.
func (s *Server) Mount(mux *http.ServeMux) error {
	if s.opts.WebSocketPath == "" {
		return nil
	}
	return frontend.Handle(mux, "damon.websocket_path", "GET "+s.opts.WebSocketPath, http.HandlerFunc(s.ServeWS))
}

// Endpoints lists the raw TCP address (once Start has bound it) and the
// WebSocket path.
func (s *Server) Endpoints() []frontend.Endpoint {
	var eps []frontend.Endpoint
	if a := s.Addr(); a != nil {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindTCP, Addr: a.String(), Note: "raw TCP"})
	}
	if s.opts.WebSocketPath != "" {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindWebSocket, Path: s.opts.WebSocketPath})
	}
	return eps
}

// Start binds the TCP listener (when configured) and starts the heartbeat.
// Work stops when ctx ends.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("damon: already started")
	}
	s.started = true
	s.mu.Unlock()
	if s.opts.Listen != "" {
		ln, err := transport.Listen(ctx, s.opts.Listen)
		if err != nil {
			return fmt.Errorf("damon: listen %s: %w", s.opts.Listen, err)
		}
		if s.opts.WrapListener != nil {
			ln = s.opts.WrapListener(ln)
		}
		s.mu.Lock()
		s.ln = ln
		s.mu.Unlock()
		go s.serveTCP(ln)
	}
	go s.heartbeat(ctx)
	go func() {
		<-ctx.Done()
		s.closeListener()
	}()
	return nil
}

// Addr is the TCP listener's address, nil before Start or without TCP.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) closeListener() {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	newHandler := func(c transport.Conn) transport.Handler { return s.newSession(c, true) }
	for {
		err := s.stream.Serve(ln, newHandler)
		if err == nil {
			return // listener closed
		}
		// EMFILE and friends: the listener is still good; back off.
		s.log.Error("damon: accept failed", "err", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// ServeWS upgrades a request to the Damon protocol over WebSocket.
func (s *Server) ServeWS(w http.ResponseWriter, r *http.Request) {
	if s.sessions.Draining() {
		http.Error(w, "server is shutting down\n", http.StatusServiceUnavailable)
		return
	}
	newHandler := func(c transport.Conn) transport.Handler { return s.newSession(c, false) }
	if err := s.upgrader.Upgrade(w, r, s.obs, newHandler); err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

// Drain stops accepting, closes every connection (the reference just exits,
// so clients see the socket close and reconnect), and waits, bounded by
// ctx, for them to be gone.
func (s *Server) Drain(ctx context.Context) {
	s.closeListener()
	s.sessions.Drain(ctx, func(ss *session) { ss.end(closeShutdown, "server shutting down") })
}

// Sessions is the number of open connections.
func (s *Server) Sessions() int { return s.sessions.Len() }

// heartbeat is the reference's ClientManager.pingClients on one global
// tick: a connection pinged on the previous tick that has not answered
// {"op":4} since is disconnected with PING_TIMEOUT; every other one is
// pinged. A new connection is first pinged 0 to PingInterval after it
// connects, and must answer before the following tick.
func (s *Server) heartbeat(ctx context.Context) {
	if s.opts.manualHeartbeat {
		return
	}
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Server) tick() {
	buf := s.sessions.AppendTo(s.tickBuf[:0])
	for _, ss := range buf {
		if ss.closing.Load() {
			continue
		}
		if ss.awaitingPong.Swap(true) {
			ss.disconnect(discPingTimeout)
		} else {
			_ = ss.conn.Send(msgPing)
		}
	}
	clear(buf)
	s.tickBuf = buf
}
