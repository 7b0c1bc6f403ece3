package server

import (
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// mountDCL wires the Decentraland ws-room front-end (/rooms/{roomId},
// /status, /rooms/status). Filled in by the ws-room protocol work.
func (s *Server) mountDCL(mux *http.ServeMux, limits transport.Options) error {
	_, _ = mux, limits
	return nil
}
