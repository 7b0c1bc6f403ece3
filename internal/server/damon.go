package server

import (
	"fmt"
	"net"
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// mountDamon wires the Damon master-socket front-end: the raw TCP listener
// (a service, bound when the server runs) and the WebSocket route on the
// main listener. See docs/damon.md.
func (s *Server) mountDamon(mux *http.ServeMux, limits transport.Options) (err error) {
	c := s.cfg.Damon
	listen := ""
	if config.On(c.TCP, true) {
		listen = c.Listen
	}
	d, err := damon.New(damon.Options{
		Hub:              s.hub,
		Metrics:          s.metrics,
		Logger:           s.log,
		IDs:              &s.ids,
		Poller:           s.poller,
		Transport:        limits,
		Compression:      s.cfg.WebSocket.Compression,
		Listen:           listen,
		WrapListener:     func(ln net.Listener) net.Listener { return s.connLimit.Listener(ln, "damon_tcp") },
		Token:            c.Token,
		PingInterval:     c.PingInterval.D(),
		MaxDocumentBytes: c.MaxDocumentBytes,
		RequireIdentify:  c.RequireIdentify,
	})
	if err != nil {
		return err
	}
	if config.On(c.WebSocket, true) {
		// ServeMux panics on a pattern that conflicts with another route;
		// turn that into a startup error naming the setting.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("damon.websocket_path %q: %v", c.WebSocketPath, r)
			}
		}()
		mux.HandleFunc("GET "+c.WebSocketPath, d.ServeWS)
	}
	for _, w := range c.Warnings() {
		s.log.Warn(w)
	}
	s.services = append(s.services, d)
	return nil
}
