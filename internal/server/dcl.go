package server

import (
	"fmt"
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// mountDCL wires the Decentraland ws-room front-end: for each configured
// prefix P, P/{roomId} (WebSocket) and P/status; plus /status and
// /health/live. Its lifecycle (cancel pending verifications, close rooms on
// shutdown) joins s.services.
func (s *Server) mountDCL(mux *http.ServeMux, limits transport.Options) error {
	c := s.cfg.DCL
	if c.SendQueueBytes > 0 {
		limits.SendQueueBytes = c.SendQueueBytes
	}
	opts := dcl.Options{
		Hub:                s.hub,
		Wheel:              s.wheel,
		Metrics:            s.metrics,
		Logger:             s.log,
		IDs:                &s.ids,
		Poller:             s.poller,
		Transport:          limits,
		HandshakeTimeout:   c.HandshakeTimeout.D(),
		IdleTimeout:        c.IdleTimeout.D(),
		MaxMessageBytes:    c.MaxMessageBytes,
		RoomCapacity:       c.RoomCapacity,
		MaxConnections:     c.MaxConnections,
		SessionPerRoom:     c.SessionScope == "room",
		AllowOwnerMismatch: !config.On(c.RequireOwnerMatch, true),
		AccessTokenSecret:  c.AccessTokenSecret,
		CommitHash:         c.CommitHash,
		EthNetwork:         c.EthNetwork,
	}
	if c.EthRPCURL != "" {
		v, err := authchain.NewJSONRPCVerifier(authchain.JSONRPCConfig{URL: c.EthRPCURL, Timeout: c.EthRPCTimeout.D()})
		if err != nil {
			return fmt.Errorf("dcl: %w", err)
		}
		opts.Contracts = v
	}
	srv := dcl.NewServer(opts)
	if err := srv.Mount(mux, c.PathPrefixes); err != nil {
		return err
	}
	s.services = append(s.services, srv)
	return nil
}
