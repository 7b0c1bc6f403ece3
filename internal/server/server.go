// Package server assembles a running Switchboard from its configuration:
// engine, hub, timing wheel, transports, every enabled protocol, the HTTP
// API, webhooks, metrics and health endpoints, and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/httpapi"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
	"github.com/switchboard-rt/switchboard/internal/webhook"
)

// Server is one Switchboard node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	wheel    *timewheel.Wheel
	pusher   *pusher.Server
	webhooks *webhook.Dispatcher
	http     *http.Server
	ln       net.Listener
	ready    atomic.Bool
	ids      transport.IDSource
	// poller holds idle WebSocket connections without a goroutine each;
	// nil where epoll is missing.
	poller *transport.Poller
	// services are protocol front-ends with their own lifecycle (their own
	// listeners, background loops): started by Run, stopped by shutdown.
	services []service
	// Per-address connection and per-app HTTP API rate limits (nil: off);
	// built by newRateLimits in ratelimit.go.
	connLimit *ratelimit.Connections
	apiLimit  *ratelimit.Keyed[string]
}

// service is a protocol front-end that needs more than HTTP routes.
type service interface {
	// Start begins serving; work stops when ctx ends.
	Start(ctx context.Context) error
	// Drain stops accepting, tells clients to go, and waits (bounded by
	// ctx) for them to leave.
	Drain(ctx context.Context)
}

// New builds a server; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New(), wheel: timewheel.New(100*time.Millisecond, 1024)}
	s.hub = hub.New(memory.New(), s.metrics)
	s.webhooks = webhook.New(webhook.Options{Logger: log, Metrics: s.metrics})
	if p, err := transport.NewPoller(); err != nil {
		log.Warn("idle connections will keep a goroutine each", "err", err)
	} else if p != nil {
		s.poller = p
		s.metrics.ParkedConnections(p.Parked)
	}
	defer func() {
		if err != nil {
			_ = s.poller.Close()
		}
	}()

	s.connLimit, s.apiLimit = newRateLimits(cfg, s.metrics, log)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
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
	if config.On(cfg.Pusher.Enabled, true) {
		s.mountPusher(mux, limits)
	}
	if config.On(cfg.Damon.Enabled, true) {
		if err := s.mountDamon(mux, limits); err != nil {
			return nil, err
		}
	}
	if config.On(cfg.DCL.Enabled, true) {
		if err := s.mountDCL(mux, limits); err != nil {
			return nil, err
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: "+r.URL.Path+"\n", http.StatusNotFound)
	})
	s.http = &http.Server{
		Handler:           s.connLimit.Middleware(mux), // 429 before any WebSocket upgrade
		ReadHeaderTimeout: cfg.Limits.HandshakeTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (s *Server) mountPusher(mux *http.ServeMux, limits transport.Options) {
	cfg := s.cfg
	apps := make([]*pusher.App, 0, len(cfg.Pusher.Apps))
	for _, a := range cfg.Pusher.Apps {
		apps = append(apps, pusher.NewApp(a, s.metrics))
	}
	limits.SlowConsumerCode = 4100 // pusher-js backs off and reconnects
	s.pusher = pusher.NewServer(pusher.Options{
		Apps:            pusher.NewApps(apps),
		Hub:             s.hub,
		Wheel:           s.wheel,
		Upgrader:        &transport.Upgrader{IDs: &s.ids, Poller: s.poller, Options: limits, Compression: cfg.WebSocket.Compression},
		Webhooks:        s.webhooks,
		Logger:          s.log,
		ActivityTimeout: cfg.Pusher.ActivityTimeout.D(),
		PongTimeout:     cfg.Pusher.PongTimeout.D(),
	})
	prefix := cfg.Pusher.PathPrefix
	mux.HandleFunc("GET "+prefix+"/app/{key}", func(w http.ResponseWriter, r *http.Request) {
		s.pusher.ServeWS(w, r, r.PathValue("key"))
	})
	api := httpapi.New(s.pusher, httpapi.Options{PathPrefix: prefix, MaxBodyBytes: cfg.Limits.MaxHTTPBodyBytes, Metrics: s.metrics, Logger: s.log,
		RateLimit: s.apiLimit})
	mux.Handle(prefix+"/apps/", api)
}

// Listen binds the configured address (so a caller can learn the port
// before Run, e.g. with ":0" in tests).
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	}
	s.ln = ln
	return ln.Addr(), nil
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
	if err := s.hub.Start(runCtx); err != nil {
		return err
	}
	go s.wheel.Run(runCtx)
	go s.webhooks.Run(runCtx)
	if err := s.startPprof(runCtx); err != nil {
		return err
	}

	for _, svc := range s.services {
		if err := svc.Start(runCtx); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.ready.Store(true)
	s.log.Info("switchboard listening", "addr", s.ln.Addr().String(), "tls", s.cfg.TLS.Cert != "")
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
	if s.pusher != nil {
		s.pusher.Drain(ctx)
	}
	for _, svc := range s.services {
		svc.Drain(ctx)
	}
	// After the drain no connection is parked; any straggler is handed
	// back to a reader goroutine rather than stranded.
	if err := s.poller.Close(); err != nil {
		s.log.Warn("closing the idle-connection poller", "err", err)
	}
	if err := s.webhooks.Flush(ctx); err != nil {
		s.log.Warn("webhooks not all sent before the shutdown deadline", "err", err)
	}
	err := <-httpDone
	if err != nil && !strings.Contains(err.Error(), "context") {
		return err
	}
	s.log.Info("stopped")
	return nil
}
