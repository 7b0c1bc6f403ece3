package talo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/transport"
	"github.com/switchboard-rt/switchboard/internal/wsaccept"
)

var _ frontend.FrontEnd = (*Server)(nil)

// Name is "talo", as in metrics labels.
func (s *Server) Name() string { return "talo" }

// Mount registers {APIPrefix}/v1/, {APIPrefix}/public/ and the socket
// path (and everything below it) on mux; a clash with another protocol's
// route is an error naming the Talo setting.
func (s *Server) Mount(mux *http.ServeMux) error {
	api := http.HandlerFunc(s.serveAPI)
	sock := http.HandlerFunc(s.ServeSocket)
	for _, r := range []struct {
		setting, pattern string
		h                http.Handler
	}{
		{"talo.api_prefix", s.opts.APIPrefix + "/v1/", api},
		{"talo.api_prefix", s.opts.APIPrefix + "/public/", api},
		{"talo.socket_path", s.opts.SocketPath, sock},
		{"talo.socket_path", s.opts.SocketPath + "/", sock},
	} {
		if err := frontend.Handle(mux, r.setting, r.pattern, r.h); err != nil {
			return err
		}
	}
	return nil
}

// Start binds SocketListen, when set, and runs the heartbeat and the
// stale-presence sweep until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.opts.SocketListen != "" {
		ln, err := transport.Listen(ctx, s.opts.SocketListen)
		if err != nil {
			return fmt.Errorf("talo.socket_listen %s: %w", s.opts.SocketListen, err)
		}
		if w := s.opts.WrapSocketListener; w != nil {
			if ln, err = w(ln); err != nil {
				return fmt.Errorf("talo.socket_listen: %w", err)
			}
		}
		var h http.Handler = http.HandlerFunc(s.ServeSocket) // every path: only ?ticket= matters
		if w := s.opts.WrapSocketHandler; w != nil {
			h = w(h)
		}
		hs := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: s.opts.HeaderTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		s.listenMu.Lock()
		s.ln, s.lnServer = ln, hs
		s.listenMu.Unlock()
		go func() {
			// As on the main listener: upgrades off net/http's path.
			if err := wsaccept.Serve(ln, hs); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("socket listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	go s.heartbeat(ctx)
	go s.presenceSweeper(ctx)
	return nil
}

// Drain stops SocketListen accepting, refuses new sockets, closes every
// open one (1001) and waits, bounded by ctx, until they are gone.
func (s *Server) Drain(ctx context.Context) {
	s.listenMu.Lock()
	hs := s.lnServer
	s.listenMu.Unlock()
	if hs != nil {
		// Upgraded sockets are hijacked: Shutdown stops accepting and
		// waits only for handshakes in progress.
		if err := hs.Shutdown(ctx); err != nil {
			s.log.Warn("socket listener shutdown", "err", err)
		}
	}
	s.conns.Drain(ctx, func(c *sockConn) { c.conn.Close(1001, "server shutting down") })
}

// Endpoints are the two URLs a game sets, api_url and socket_url (and
// SocketListen's address once bound).
func (s *Server) Endpoints() []frontend.Endpoint {
	eps := []frontend.Endpoint{
		{Kind: frontend.KindHTTP, Path: s.opts.APIPrefix, Note: "api_url"},
		{Kind: frontend.KindWebSocket, Path: s.opts.SocketPath, Note: "socket_url"},
	}
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if s.ln != nil {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindWebSocket, Addr: dialAddr(s.ln.Addr()), Note: "socket_url, every path"})
	}
	return eps
}

// dialAddr is a listener's address as a client on this machine dials it:
// an unspecified IP (":7070") becomes localhost.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
