package server

import (
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// mountDamon wires the Damon master-socket front-end (TCP listener and the
// /damon WebSocket route). Filled in by the Damon protocol work.
func (s *Server) mountDamon(mux *http.ServeMux, limits transport.Options) error {
	_, _ = mux, limits
	return nil
}
