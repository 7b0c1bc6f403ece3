// Package server assembles a running Switchboard from its configuration:
// engine, hub, timing wheel, transports, every enabled protocol, the HTTP
// API, webhooks, metrics and health endpoints, and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
	"github.com/switchboard-rt/switchboard/internal/wsaccept"
)

// Server is one Switchboard node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	wheel    *timewheel.Wheel
	webhooks *webhook.Dispatcher
	http     *http.Server
	conns    *connGuard
	ln       net.Listener
	ready    atomic.Bool
	started  chan struct{} // closed once ready is first set
	eng      engine.Engine
	ids      transport.IDSource
	// poller holds idle WebSocket connections without a goroutine each;
	// nil where epoll is missing.
	poller *transport.Poller
	// frontEnds are the enabled protocols, in the order of protocols():
	// mounted by New, started by Run, drained by shutdown.
	frontEnds []frontend.FrontEnd
	// Per-address connection and per-app HTTP API rate limits (nil: off);
	// built by newRateLimits in ratelimit.go.
	connLimit *ratelimit.Connections
	apiLimit  *ratelimit.Keyed[string]
	// trimmer returns an idle heap's free pages (nil: memory.trim_idle_heap off).
	trimmer *heapTrimmer
}

// protocol is one front-end the server can run: its on/off switch and the
// function (one file per protocol in this package) that builds it from the
// configuration.
type protocol struct {
	enabled *bool
	build   func(limits transport.Options) (frontend.FrontEnd, error)
}

// protocols lists every protocol, each on by default.
func (s *Server) protocols() []protocol {
	return []protocol{
		{s.cfg.Pusher.Enabled, s.newPusher},
		{s.cfg.Damon.Enabled, s.newDamon},
		{s.cfg.DCL.Enabled, s.newDCL},
		{s.cfg.Talo.Enabled, s.newTalo},
	}
}

// New builds a server; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New(), wheel: timewheel.New(100*time.Millisecond, 1024), started: make(chan struct{})}
	eng, err := s.newEngine()
	if err != nil {
		return nil, err
	}
	s.eng = eng
	s.hub = hub.New(eng, s.metrics)
	whOpts := webhook.Options{Logger: log, Metrics: s.metrics}
	if kv := s.clusterKV(); kv != nil {
		whOpts.Confirm = pusher.WebhookConfirm(kv)
	}
	s.webhooks = webhook.New(whOpts)
	if p, err := transport.NewPoller(); err != nil {
		log.Warn("idle connections will keep a goroutine each", "err", err)
	} else if p != nil {
		s.poller = p
		s.metrics.ParkedConnections(p.Parked)
	}
	defer func() {
		if err != nil {
			_ = s.poller.Close()
			s.closeFrontEnds()
		}
	}()

	s.connLimit, s.apiLimit = newRateLimits(cfg, s.metrics, log)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() || !s.hub.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})

	limits := transport.Options{
		MaxMessageBytes: cfg.Limits.MaxMessageBytes,
		SendQueueBytes:  cfg.Limits.SendQueueBytes,
		WriteTimeout:    cfg.Limits.WriteTimeout.D(),
	}
	for _, p := range s.protocols() {
		if !config.On(p.enabled, true) {
			continue
		}
		fe, err := p.build(limits)
		if err != nil {
			return nil, err
		}
		s.frontEnds = append(s.frontEnds, fe) // closed by New's cleanup if a later step fails
		if err := fe.Mount(mux); err != nil {
			return nil, err
		}
	}
	if err := s.mountConsole(mux); err != nil {
		return nil, err
	}
	mux.HandleFunc("/", notFound)

	shed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_http_connections_shed_total",
		Help: "Plain-HTTP connections closed because limits.max_http_connections were open.",
	})
	s.metrics.Registry.MustRegister(shed)
	if config.On(cfg.Memory.TrimIdleHeap, true) {
		trims := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_heap_trims_total",
			Help: "Times the quiet heap's free pages were returned to the OS (memory.trim_idle_heap).",
		})
		s.metrics.Registry.MustRegister(trims)
		s.trimmer = newHeapTrimmer(heapTrimInterval, log)
		s.trimmer.trims = trims
	}
	s.conns = newConnGuard(maxHTTPConnections(cfg.Limits.MaxHTTPConnections), shed)
	s.http = &http.Server{
		Handler:           s.untilStarted(s.connLimit.Middleware(bodyDeadline(cfg.Limits.HTTPBodyTimeout.D(), mux))), // 429 before any upgrade work
		ReadHeaderTimeout: cfg.Limits.HandshakeTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnState:         s.conns.ConnState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// maxHTTPConnections resolves limits.max_http_connections: 0 is a quarter
// of the open-file limit, so that plain HTTP can never take the
// descriptors WebSockets and the Damon listener need.
func maxHTTPConnections(configured int) int {
	if configured > 0 {
		return configured
	}
	n := openFileLimit() / 4
	switch {
	case n <= 0:
		return 4096
	case n < 16:
		return 16
	}
	return n
}

// notFound answers every path no route claims, in the JSON the HTTP API
// and the ws-room endpoints use for their errors.
func notFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":"Not Found"}`))
}

// Listen binds the configured address (so a caller can learn the port
// before Run, e.g. with ":0" in tests).
func (s *Server) Listen() (net.Addr, error) {
	ln, err := transport.Listen(context.Background(), s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	if ln, err = s.tlsListener(ln); err != nil {
		return nil, err
	}
	s.ln = ln
	return ln.Addr(), nil
}

// tlsListener serves TLS on ln when tls.cert and tls.key are set (the main
// listener and talo.socket_listen); on error it closes ln.
func (s *Server) tlsListener(ln net.Listener) (net.Listener, error) {
	if s.cfg.TLS.Cert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
	if err != nil {
		_ = ln.Close() // the TLS error is the one to report
		return nil, fmt.Errorf("tls: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}), nil
}

// closeFrontEnds releases what front-ends hold beyond connections (Talo's
// store), once nothing can reach them any more.
func (s *Server) closeFrontEnds() {
	for _, fe := range s.frontEnds {
		if c, ok := fe.(io.Closer); ok {
			if err := c.Close(); err != nil {
				s.log.Warn("closing a protocol", "protocol", fe.Name(), "err", err)
			}
		}
	}
}

// Run serves until ctx ends, then shuts down gracefully: stop accepting,
// tell every client to reconnect (Pusher 4200), flush webhooks, exit
// within the configured bound.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	runCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	go s.wheel.Run(runCtx)
	go s.webhooks.Run(runCtx)
	setGCPercent(s.cfg.Memory.GCPercent, s.log)
	if s.trimmer != nil {
		go s.trimmer.run(runCtx)
	}
	if err := s.startPprof(runCtx); err != nil {
		return err
	}
	// HTTP is served from here on, so /healthz and /readyz answer while a
	// cluster engine joins; everything else gets 503 until the node has
	// joined and its protocols have started (untilStarted).
	errc := make(chan error, 1)
	// wsaccept: WebSocket upgrades off net/http's per-connection path (a
	// fifth of a connect storm's CPU; docs/performance.md, fifth round).
	go func() { errc <- wsaccept.Serve(s.ln, s.http) }()
	s.log.Info("switchboard listening", "addr", s.ln.Addr().String(), "tls", s.cfg.TLS.Cert != "", "engine", s.cfg.Cluster.Engine)
	if err := s.join(ctx, runCtx); err != nil {
		_ = s.http.Close()
		s.closeFrontEnds()
		if ctx.Err() != nil {
			return nil // stopped while joining
		}
		return err
	}
	for _, fe := range s.frontEnds {
		if err := fe.Start(runCtx); err != nil {
			_ = s.http.Close()
			s.closeFrontEnds()
			return err
		}
	}
	s.ready.Store(true)
	close(s.started)
	s.logEndpoints()
	if s.cfg.UsesDefaultSecret() {
		s.log.Warn("an app uses the published default secret \"app-secret\"; set a real secret before exposing this server")
	}

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	return s.shutdown()
}

func (s *Server) shutdown() error {
	timeout := s.cfg.Shutdown.Timeout.D()
	s.log.Info("shutting down", "timeout", timeout)
	s.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Stop accepting first: Shutdown closes the listener and waits for
	// in-flight HTTP API calls; hijacked WebSockets are ours to end.
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()
	for _, fe := range s.frontEnds {
		fe.Drain(ctx)
	}
	// After the drain no connection is parked; any straggler is handed
	// back to a reader goroutine rather than stranded.
	if err := s.poller.Close(); err != nil {
		s.log.Warn("closing the idle-connection poller", "err", err)
	}
	// The drained clients' held webhooks (member_removed, channel_vacated)
	// go now, while the engine still answers: in a cluster each is paired
	// through the engine's KV with a re-add on the node the client moved
	// to, and a closed engine cannot take the marker, so the removal
	// would go out while the re-add, finding the marker, did not.
	if err := s.webhooks.Flush(ctx); err != nil {
		s.log.Warn("webhooks not all sent before the shutdown deadline", "err", err)
	}
	// Leave the cluster before the last webhooks go: what the node still
	// held is removed at once, and the transitions that causes are queued
	// and flushed below.
	if err := s.eng.Close(); err != nil {
		s.log.Warn("leaving the cluster", "err", err)
	}
	if err := s.webhooks.Flush(ctx); err != nil {
		s.log.Warn("webhooks not all sent before the shutdown deadline", "err", err)
	}
	// Past the deadline, Shutdown gives up on in-flight HTTP calls: that
	// is the bound working, not a failure.
	httpErr := <-httpDone
	// No request is left that could use a front-end's store.
	s.closeFrontEnds()
	if httpErr != nil && !errors.Is(httpErr, context.DeadlineExceeded) {
		return httpErr
	}
	s.log.Info("stopped")
	return nil
}

// Protocol is where the clients of one enabled protocol connect.
type Protocol struct {
	Name      string // the front-end's name ("pusher")
	Endpoints []frontend.Endpoint
}

// Started is closed once the node serves clients: Run has joined the
// cluster and started every protocol.
func (s *Server) Started() <-chan struct{} { return s.started }

// ClientBase is the main listener's address as a client on this machine
// dials it ("localhost:6001"), and whether it serves TLS; valid once
// Listen or Run has bound it.
func (s *Server) ClientBase() (hostPort string, tls bool) {
	return clientHost(s.ln.Addr()), s.cfg.TLS.Cert != ""
}

// Protocols lists every enabled protocol's endpoints, in the server's
// order; call it after Started (own listeners' ports are known then).
func (s *Server) Protocols() []Protocol {
	out := make([]Protocol, 0, len(s.frontEnds))
	for _, fe := range s.frontEnds {
		out = append(out, Protocol{Name: fe.Name(), Endpoints: fe.Endpoints()})
	}
	return out
}

// logEndpoints writes one line per enabled protocol with the URLs its
// clients use.
func (s *Server) logEndpoints() {
	base, tls := s.ClientBase()
	for _, p := range s.Protocols() {
		var urls []string
		for _, e := range p.Endpoints {
			u := e.URL(base, tls)
			if e.Note != "" {
				u += " (" + e.Note + ")"
			}
			urls = append(urls, u)
		}
		s.log.Info("protocol enabled", "protocol", p.Name, "endpoints", strings.Join(urls, ", "))
	}
}

// clientHost is the listener's address as a client on this machine would
// dial it: an unspecified IP (":6001") becomes localhost.
func clientHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// join starts the engine (a cluster engine joins the cluster: it may wait
// for a store quorum) with runCtx as its lifetime; it gives up when ctx,
// the server's, ends first.
func (s *Server) join(ctx, runCtx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.hub.Start(runCtx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // joined as the stop came: start, then stop cleanly
		default:
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("engine %s: %w", s.cfg.Cluster.Engine, err)
	}
	// A cluster engine may start before its store is usable (NATS waits
	// for a JetStream quorum): wait for it, as /readyz does.
	for tick := time.NewTicker(50 * time.Millisecond); !s.hub.Ready(); {
		select {
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		}
	}
	s.log.Info("engine ready", "engine", s.cfg.Cluster.Engine, "node", s.hub.NodeID())
	return nil
}

// untilStarted holds every request but /healthz, /readyz and /metrics
// until Run has joined the cluster and started every protocol (for the
// memory engine, microseconds), so no client reaches a node that cannot
// serve it yet; a request still waiting after startWait gets 503 and
// Retry-After, and a load balancer following /readyz sends none.
func (s *Server) untilStarted(next http.Handler) http.Handler {
	const startWait = 5 * time.Second
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
		default:
			if !s.ready.Load() {
				t := time.NewTimer(startWait)
				select {
				case <-s.started:
				case <-t.C:
				case <-r.Context().Done():
				}
				t.Stop()
			}
			if !s.ready.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":"starting: this node has not joined its cluster yet"}` + "\n"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
