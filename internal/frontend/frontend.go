// Package frontend is the one contract every protocol front-end (Pusher,
// Damon, Decentraland ws-room, and the next one) fulfils, so that
// internal/server assembles, starts, drains and announces them all the same
// way. docs/architecture.md ("Adding a protocol") is the template.
package frontend

import (
	"context"
	"fmt"
	"net/http"
)

// FrontEnd is one protocol served by a node. The server calls Mount once
// while it assembles the node, Start once when it runs (after the hub,
// before the main listener accepts), Endpoints right after Start for the
// startup log, and Drain once at shutdown.
type FrontEnd interface {
	// Name is the protocol's short name, as in metrics labels ("pusher").
	Name() string
	// Mount registers the front-end's routes on the main HTTP listener. A
	// route that clashes with another is an error naming the setting.
	Mount(mux *http.ServeMux) error
	// Start begins work that is not an HTTP route (own listeners,
	// heartbeats); that work stops when ctx ends.
	Start(ctx context.Context) error
	// Drain refuses new clients, tells connected ones to go (each in its
	// protocol's own way), and waits, bounded by ctx, until they have.
	Drain(ctx context.Context)
	// Endpoints says where clients connect, for the startup log.
	Endpoints() []Endpoint
}

// Endpoint is one place a client connects to. Exactly one of Path and
// Addr is set.
type Endpoint struct {
	// Kind is how a client talks there: KindWebSocket, KindHTTP or KindTCP.
	Kind string
	// Path is a path on the main HTTP listener ("/app/app-key").
	Path string
	// Addr is the front-end's own listener ("127.0.0.1:42069").
	Addr string
	// Note says what the endpoint is for ("app app-id"); may be empty.
	Note string
}

// Endpoint kinds.
const (
	KindWebSocket = "ws"
	KindHTTP      = "http"
	KindTCP       = "tcp"
)

// URL is the endpoint as a client would type it. base is the main
// listener's host:port, tls whether it serves TLS.
func (e Endpoint) URL(base string, tls bool) string {
	if e.Addr != "" {
		return e.Kind + "://" + e.Addr
	}
	scheme := e.Kind
	if tls {
		scheme += "s"
	}
	return scheme + "://" + base + e.Path
}

// Handle registers pattern on mux, returning ServeMux's panic on a
// conflicting pattern as an error that names setting.
func Handle(mux *http.ServeMux, setting, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: route %q: %v", setting, pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}
