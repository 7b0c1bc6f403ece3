package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// newTalo builds the Talo Socket front-end from cfg.Talo: the HTTP routes
// at {api_prefix}/v1/ and {api_prefix}/public/, the WebSocket at
// socket_path and below, and, with socket_listen, the WebSocket on a
// listener of its own. It opens (and migrates) the store. See docs/talo.md.
func (s *Server) newTalo(limits transport.Options) (frontend.FrontEnd, error) {
	c := s.cfg.Talo
	srv, err := talo.NewServer(talo.Options{
		Hub:         s.hub,
		StorePath:   c.StorePath,
		PostgresDSN: c.PostgresDSN,
		Metrics:     s.metrics,
		Logger:      s.log,
		IDs:         &s.ids,
		Poller:      s.poller,
		Transport:   limits,

		SocketPath:      c.SocketPath,
		APIPrefix:       c.APIPrefix,
		MaxMessageBytes: c.MaxMessageBytes,
		PingInterval:    c.PingInterval.D(),
		MaxConnections:  c.MaxConnections,
		TicketTTL:       c.TicketTTL.D(),
		SocketTokenTTL:  c.SocketTokenTTL.D(),

		SocketLimitUnidentified: c.SocketLimitUnidentified,
		SocketLimitIdentified:   c.SocketLimitIdentified,
		SocketLimitWindow:       c.SocketLimitWindow.D(),
		SocketMaxWarnings:       c.SocketMaxWarnings,

		HTTPLimitAuth:     c.HTTPLimitAuth,
		HTTPLimitDefault:  c.HTTPLimitDefault,
		HTTPLimitWindow:   c.HTTPLimitWindow.D(),
		DisableRateLimits: !config.On(c.HTTPRateLimits, true),
		TrustProxyHeaders: c.TrustProxyHeaders,

		SignatureMaxSkew:   c.SignatureMaxSkew.D(),
		SignatureMaxBehind: c.SignatureMaxBehind.D(),
		SignatureReplayTTL: c.SignatureReplayTTL.D(),

		PageSize:              c.PageSize,
		PresenceSweepInterval: c.PresenceSweepInterval.D(),
		PresenceStaleAfter:    c.PresenceStaleAfter.D(),
		AllowedOrigins:        c.AllowedOrigins,
		UnityChannelEvents:    c.UnityChannelEvents,
	})
	if err != nil {
		if _, ok := s.hub.KV(); !ok {
			return nil, fmt.Errorf("talo.enabled: cluster.engine %s has no key-value store, which Talo's tickets and tokens need; "+
				"use another engine or set talo.enabled: false", s.cfg.Cluster.Engine)
		}
		// The store error names the file or the database, never the DSN.
		return nil, fmt.Errorf("talo.store_path / talo.postgres_dsn: %w", err)
	}
	where := c.StorePath
	if c.PostgresDSN != "" {
		where = "postgresql"
	}
	s.log.Info("talo store open", "store", where)
	return &taloFrontEnd{srv: srv, cfg: c, log: s.log, tls: s.tlsListener,
		wrap: s.connLimit.Middleware, headerTimeout: s.cfg.Limits.HandshakeTimeout.D()}, nil
}

// taloFrontEnd adapts talo.Server to the FrontEnd contract and adds the
// socket_listen listener.
type taloFrontEnd struct {
	srv           *talo.Server
	cfg           config.Talo
	log           *slog.Logger
	tls           func(net.Listener) (net.Listener, error)
	wrap          func(http.Handler) http.Handler // the per-address connection rate limit
	headerTimeout time.Duration

	mu     sync.Mutex
	ln     net.Listener // socket_listen, once started
	socket *http.Server
}

func (t *taloFrontEnd) Name() string { return "talo" }

// Mount registers the routes through frontend.Handle, so that a clash
// with another protocol names the Talo setting that caused it.
func (t *taloFrontEnd) Mount(mux *http.ServeMux) error {
	own := http.NewServeMux()
	t.srv.Mount(own)
	prefix := "/" + strings.Trim(t.cfg.APIPrefix, "/")
	if prefix == "/" {
		prefix = ""
	}
	sock := "/" + strings.Trim(t.cfg.SocketPath, "/")
	for _, r := range []struct{ setting, pattern string }{
		{"talo.api_prefix", prefix + "/v1/"},
		{"talo.api_prefix", prefix + "/public/"},
		{"talo.socket_path", sock},
		{"talo.socket_path", sock + "/"},
	} {
		if err := frontend.Handle(mux, r.setting, r.pattern, own); err != nil {
			return err
		}
	}
	return nil
}

// Start runs the heartbeat and the presence sweep, and binds
// socket_listen: there every path is the socket, as in the reference.
func (t *taloFrontEnd) Start(ctx context.Context) error {
	if t.cfg.SocketListen != "" {
		ln, err := net.Listen("tcp", t.cfg.SocketListen)
		if err != nil {
			return fmt.Errorf("talo.socket_listen %s: %w", t.cfg.SocketListen, err)
		}
		if ln, err = t.tls(ln); err != nil {
			return err
		}
		hs := &http.Server{
			Handler:           t.wrap(http.HandlerFunc(t.srv.ServeSocket)),
			ReadHeaderTimeout: t.headerTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
		}
		t.mu.Lock()
		t.ln, t.socket = ln, hs
		t.mu.Unlock()
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.log.Error("talo socket listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return t.srv.Start(ctx)
}

// Drain stops socket_listen accepting, then closes every Talo socket with
// 1001 and waits for them.
func (t *taloFrontEnd) Drain(ctx context.Context) {
	t.mu.Lock()
	hs := t.socket
	t.mu.Unlock()
	if hs != nil {
		// Upgraded sockets are hijacked: Shutdown only stops accepting and
		// waits for handshakes in progress.
		if err := hs.Shutdown(ctx); err != nil {
			t.log.Warn("talo socket listener shutdown", "err", err)
		}
	}
	t.srv.Drain(ctx)
}

// Close closes the store; the server calls it once no HTTP request is left.
func (t *taloFrontEnd) Close() error { return t.srv.Close() }

// Endpoints are the two URLs a game sets: api_url and socket_url.
func (t *taloFrontEnd) Endpoints() []frontend.Endpoint {
	prefix := strings.TrimRight("/"+strings.Trim(t.cfg.APIPrefix, "/"), "/")
	eps := []frontend.Endpoint{
		{Kind: frontend.KindHTTP, Path: prefix, Note: "api_url"},
		{Kind: frontend.KindWebSocket, Path: "/" + strings.Trim(t.cfg.SocketPath, "/"), Note: "socket_url"},
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindWebSocket, Addr: clientHost(t.ln.Addr()), Note: "socket_url, every path"})
	}
	return eps
}
