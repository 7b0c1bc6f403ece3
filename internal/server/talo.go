package server

import (
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// newTalo builds the Talo Socket front-end from cfg.Talo: the HTTP routes
// at {api_prefix}/v1/ and {api_prefix}/public/, the WebSocket at
// socket_path and below, and, with socket_listen, the WebSocket on a
// listener of its own (TLS and the connection rate limit as on the main
// listener). It opens (and migrates) the store, which the server closes
// after the shutdown (talo.Server is an io.Closer). See docs/talo.md.
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

		SocketPath:         c.SocketPath,
		SocketListen:       c.SocketListen,
		WrapSocketListener: s.tlsListener,
		WrapSocketHandler:  s.connLimit.Middleware,
		HeaderTimeout:      s.cfg.Limits.HandshakeTimeout.D(),

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
	return srv, nil
}
