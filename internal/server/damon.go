package server

import (
	"net"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// newDamon builds the Damon master-socket front-end from cfg.Damon: its
// own raw TCP listener (bound by Start) and the WebSocket route on the
// main listener. See docs/damon.md.
func (s *Server) newDamon(limits transport.Options) (frontend.FrontEnd, error) {
	c := s.cfg.Damon
	opts := damon.Options{
		Hub:              s.hub,
		Metrics:          s.metrics,
		Logger:           s.log,
		IDs:              &s.ids,
		Poller:           s.poller,
		Transport:        limits,
		Compression:      s.cfg.WebSocket.Compression,
		WrapListener:     func(ln net.Listener) net.Listener { return s.connLimit.Listener(ln, "damon_tcp") },
		Token:            c.Token,
		PingInterval:     c.PingInterval.D(),
		MaxDocumentBytes: c.MaxDocumentBytes,
		RequireIdentify:  c.RequireIdentify,

		IdentifyFailBurst:    c.IdentifyFailBurst,
		IdentifyFailInterval: c.IdentifyFailInterval.D(),
		IdentifyAddresses:    c.IdentifyTrackedAddresses,
	}
	if config.On(c.TCP, true) {
		opts.Listen = c.Listen
	}
	if config.On(c.WebSocket, true) {
		opts.WebSocketPath = c.WebSocketPath
	}
	for _, w := range c.Warnings() {
		s.log.Warn(w)
	}
	return damon.NewServer(opts)
}
