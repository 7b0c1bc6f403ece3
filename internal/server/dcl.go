package server

import (
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// newDCL builds the Decentraland ws-room front-end from cfg.DCL: for each
// configured prefix P, P/{roomId} (WebSocket) and P/status; plus /status
// and /health/live. See docs/decentraland.md.
func (s *Server) newDCL(limits transport.Options) (frontend.FrontEnd, error) {
	c := s.cfg.DCL
	if c.SendQueueBytes > 0 {
		limits.SendQueueBytes = c.SendQueueBytes
	}
	opts := dcl.Options{
		Hub:                s.hub,
		Wheel:              s.wheel,
		PathPrefixes:       c.PathPrefixes,
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
			return nil, fmt.Errorf("dcl: %w", err)
		}
		opts.Contracts = v
	}
	return dcl.NewServer(opts), nil
}
