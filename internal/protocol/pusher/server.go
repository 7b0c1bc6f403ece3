// Package pusher speaks the Pusher Channels WebSocket protocol (version 7)
// on Switchboard's hub: connections, every channel type, presence, client
// events, user sign-in, watchlists and cache channels. The signed HTTP API
// (package httpapi) publishes through the methods of Server.
package pusher

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Options configure a Server.
type Options struct {
	Apps            *Apps
	Hub             *hub.Hub
	Wheel           *timewheel.Wheel
	Upgrader        *transport.Upgrader
	Webhooks        *webhook.Dispatcher // nil: no webhooks
	Logger          *slog.Logger
	ActivityTimeout time.Duration // sent to clients; server pings after this much silence
	PongTimeout     time.Duration // then 4201 without an answer
	// PathPrefix goes before /app/{key} and /apps/ (e.g. "/ws").
	PathPrefix string
	// API builds the signed HTTP API (package httpapi, which imports this
	// one) on the Server; Mount serves it at PathPrefix/apps/. nil: none.
	API func(*Server) http.Handler
	// ClusterWebhooks, set on a cluster, holds the markers that make a
	// held channel_vacated/member_removed and the re-occupy that cancels
	// it agree across nodes (see cluster.go); nil on one node, where the
	// webhook dispatcher pairs them itself.
	ClusterWebhooks engine.KV
	// Now is the clock of the client-event rate limiter; nil is time.Now.
	// Tests inject one to refill the bucket without sleeping.
	Now func() time.Time
}

// Server is the Pusher protocol front-end.
type Server struct {
	opts   Options
	log    *slog.Logger
	nodeID uint32 // first half of every socket_id, random per process

	sessions      connset.Set[*session]
	countThrottle throttle
}

var _ frontend.FrontEnd = (*Server)(nil)

// NewServer returns a Server; Mount puts it on the main listener.
func NewServer(opts Options) *Server {
	var b [4]byte
	_, _ = rand.Read(b[:])
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:          opts,
		log:           opts.Logger.With("protocol", "pusher"),
		nodeID:        binary.BigEndian.Uint32(b[:]) & 0x7fffffff,
		countThrottle: throttle{interval: 5 * time.Second},
	}
	s.ownApps()
	return s
}

// Name implements frontend.FrontEnd.
func (s *Server) Name() string { return "pusher" }

// Mount serves GET {prefix}/app/{key} (the WebSocket) and, with an API,
// {prefix}/apps/ (the HTTP API).
func (s *Server) Mount(mux *http.ServeMux) error {
	prefix := s.opts.PathPrefix
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeWS(w, r, r.PathValue("key")) })
	if err := frontend.Handle(mux, "pusher.path_prefix", "GET "+prefix+"/app/{key}", ws); err != nil {
		return err
	}
	if s.opts.API != nil {
		return frontend.Handle(mux, "pusher.path_prefix", prefix+"/apps/", s.opts.API(s))
	}
	return nil
}

// Start implements frontend.FrontEnd; Pusher has no work outside its routes.
func (s *Server) Start(context.Context) error { return nil }

// Endpoints lists each app's WebSocket URL and HTTP API, sorted by app id.
func (s *Server) Endpoints() []frontend.Endpoint {
	apps := s.opts.Apps.All()
	slices.SortFunc(apps, func(a, b *App) int { return strings.Compare(a.ID, b.ID) })
	var eps []frontend.Endpoint
	for _, a := range apps {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindWebSocket, Path: s.opts.PathPrefix + "/app/" + a.Key, Note: "app " + a.ID})
		if s.opts.API != nil {
			eps = append(eps, frontend.Endpoint{Kind: frontend.KindHTTP, Path: s.opts.PathPrefix + "/apps/" + a.ID, Note: "HTTP API"})
		}
	}
	return eps
}

// Apps returns the app registry.
func (s *Server) Apps() *Apps { return s.opts.Apps }

// ServeWS handles GET /app/{key}. The upgrade always completes, and
// refusals (unknown app, disabled, quota, protocol version) are sent the
// way Pusher sends them: pusher:error, then a close frame with the code.
func (s *Server) ServeWS(w http.ResponseWriter, r *http.Request, key string) {
	app := s.opts.Apps.ByKey(key)
	var newHandler func(transport.Conn) transport.Handler
	quota := false // a place in the app's connection quota was taken
	switch {
	case app == nil:
		newHandler = refuse(4001, fmt.Sprintf("App key %s does not exist.", truncate(key, 64)))
	case !app.Enabled:
		newHandler = refuse(4003, "The application is disabled.")
	case !originAllowed(app, r.Header.Get("Origin")):
		newHandler = refuse(4009, "Origin not allowed.")
	case s.sessions.Draining():
		newHandler = refuse(4200, "Server is shutting down; reconnect.")
	default:
		if code, msg := checkProtocolVersion(r.URL.Query()); code != 0 {
			newHandler = refuse(code, msg)
		} else if max := app.Limits.MaxConnections; max > 0 {
			newHandler, quota = s.admit(r.Context(), app, max)
		} else {
			newHandler = func(c transport.Conn) transport.Handler { return s.newSession(app, c) }
		}
	}
	if err := s.opts.Upgrader.Upgrade(w, r, observerFor(app), newHandler); err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		if quota { // no session was made to give the place back
			s.releaseQuota(app)
		}
	}
}

// refuse is the handler of a connection refused with code: pusher:error,
// then a close frame with the code.
func refuse(code int, msg string) func(transport.Conn) transport.Handler {
	return func(c transport.Conn) transport.Handler {
		_ = c.Send(transport.Text(errorEvent(code, msg, "")))
		c.Close(uint16(code), msg)
		return discard{}
	}
}

// admitTimeout bounds the store round trip of a quota check on a cluster.
const admitTimeout = 5 * time.Second

// admit takes a place in app's connection quota, which counts the whole
// cluster's connections (hub.AdmitConnection), and returns the handler
// for the upgrade: a session that gives the place back when it closes,
// 4004 when the quota is full, or 4100 (pusher-js retries after a back
// off) when the cluster's store could not be asked.
func (s *Server) admit(ctx context.Context, app *App, max int) (func(transport.Conn) transport.Handler, bool) {
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	ok, err := s.opts.Hub.AdmitConnection(ctx, app.ID, max)
	switch {
	case err != nil:
		s.log.Warn("connection quota check failed", "app", app.ID, "err", err)
		return refuse(4100, "Over capacity: the connection quota could not be checked; retry later."), false
	case !ok:
		return refuse(4004, "Application is over its connection quota."), false
	}
	return func(c transport.Conn) transport.Handler {
		ss := s.newSession(app, c)
		ss.quota = true
		return ss
	}, true
}

func (s *Server) releaseQuota(app *App) {
	if err := s.opts.Hub.ReleaseConnection(app.ID); err != nil {
		s.log.Warn("connection quota release failed", "app", app.ID, "err", err)
	}
}

// checkProtocolVersion applies Pusher's rules for the protocol query
// parameter: 5 to 7 are spoken; 1 to 4 are too old (4007); garbage is 4006.
// A missing value is accepted (pusher-js always sends 7; old clients that
// send none are treated as current, as soketi and Sockudo do).
func checkProtocolVersion(q map[string][]string) (int, string) {
	v := ""
	if vs := q["protocol"]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return 0, ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 4006, fmt.Sprintf("Invalid version string %q.", truncate(v, 20))
	}
	if n < 5 || n > 7 {
		return 4007, fmt.Sprintf("Unsupported protocol version %d.", n)
	}
	return 0, ""
}

func originAllowed(app *App, origin string) bool {
	if len(app.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range app.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

type discard struct{}

func (discard) HandleMessage([]byte, bool)      {}
func (discard) HandleClose(transport.CloseInfo) {}

// Drain refuses new connections and asks every client to reconnect
// elsewhere: pusher:error 4200, then close 4200 (pusher-js reconnects at
// once). It returns when all are gone or ctx ends.
func (s *Server) Drain(ctx context.Context) {
	s.sessions.Drain(ctx, func(ss *session) { ss.fail(4200, "Server is shutting down; reconnect.") })
}

// Sessions is the number of open connections.
func (s *Server) Sessions() int { return s.sessions.Len() }

// TriggerEvent is one event published through the HTTP API.
type TriggerEvent struct {
	Name     string
	Data     string
	Channels []string
	SocketID string // excluded from delivery when set
}

// Trigger publishes ev to each of its channels. Validation is the
// caller's (the HTTP API answers 400/413 before calling). Events on cache
// channels are stored for replay to later subscribers.
//
// The data is escaped once, and every channel's frame is cut from one
// buffer of the exact total size. BenchmarkAPIPublish (go test -run '^$'
// -bench APIPublish -benchmem ./internal/protocol/pusher/httpapi/) counts
// it: 3 allocs per channel before (eventWriter, its growth, the hub's
// Message), after 1 per channel (the Message) plus 1 per event.
func (s *Server) Trigger(ctx context.Context, app *App, ev TriggerEvent) error {
	// Room for the data escaped, with some slack for escapes.
	dataLen := len(ev.Data) + len(ev.Data)/8 + 2
	n := 0
	for _, ch := range ev.Channels {
		n += len(`{"event":"","channel":"","data":}`) + len(ev.Name) + len(ch) + dataLen
	}
	buf := make([]byte, 0, n)
	var data []byte // the escaped data, in the first frame
	for _, ch := range ev.Channels {
		start := len(buf)
		buf = append(buf, `{"event":`...)
		buf = appendJSONString(buf, ev.Name)
		buf = append(buf, `,"channel":`...)
		buf = appendJSONString(buf, ch)
		buf = append(buf, `,"data":`...)
		if data == nil {
			d := len(buf)
			buf = appendJSONString(buf, ev.Data)
			data = buf[d:len(buf):len(buf)]
		} else {
			buf = append(buf, data...)
		}
		buf = append(buf, '}')
		// Capped, so that a later append (after a name that needed
		// escaping outgrew the estimate) cannot write into this frame.
		payload := buf[start:len(buf):len(buf)]
		if ClassifyChannel(ch).Cache {
			// Its own copy: a stored frame must not keep the buffer of
			// every channel's frame alive for the cache's lifetime.
			if err := s.opts.Hub.CacheSet(ctx, app.ID, ch, bytes.Clone(payload), app.CacheTTL); err != nil {
				return err
			}
		}
		if err := s.opts.Hub.Publish(ctx, engine.Publication{
			Namespace: app.ID, Channel: ch, Payload: payload, ExcludeConn: ev.SocketID,
		}); err != nil {
			return err
		}
	}
	return nil
}

// Channels lists occupied channels cluster-wide.
func (s *Server) Channels(ctx context.Context, app *App, prefix string) (map[string]engine.ChannelStats, error) {
	return s.opts.Hub.Channels(ctx, app.ID, prefix)
}

// Channel returns one channel's stats and whether it is occupied.
func (s *Server) Channel(ctx context.Context, app *App, name string) (engine.ChannelStats, bool, error) {
	return s.opts.Hub.Channel(ctx, app.ID, name)
}

// PresenceUsers lists the user ids in a presence channel.
func (s *Server) PresenceUsers(ctx context.Context, app *App, channel string) ([]string, error) {
	members, err := s.opts.Hub.PresenceMembers(ctx, app.ID, channel)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.UserID
	}
	return ids, nil
}

// CachedEvent returns a cache channel's stored event (the full message,
// as subscribers receive it) and its remaining lifetime.
func (s *Server) CachedEvent(ctx context.Context, app *App, channel string) ([]byte, time.Duration, bool, error) {
	return s.opts.Hub.CacheGet(ctx, app.ID, channel)
}

// TerminateUser closes every connection signed in as userID, cluster-wide.
func (s *Server) TerminateUser(ctx context.Context, app *App, userID string) error {
	return s.opts.Hub.TerminateUser(ctx, app.ID, userID)
}

// socketID formats a connection's socket_id: two decimal integers joined
// by a dot, as the SDKs' ^\d+\.\d+$ check demands.
func (s *Server) socketID(connID uint64) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, uint64(s.nodeID), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, connID, 10)
	return string(b)
}

// emitWebhook queues an app's webhook. Channels starting with # are
// Switchboard's own plumbing (server-to-user, watchlists): the app never
// subscribed to them, so they raise no webhooks.
func (s *Server) emitWebhook(app *App, ev webhook.Event) {
	if strings.HasPrefix(ev.Channel, "#") {
		return
	}
	if s.webhooksOn(app) && s.clusterWebhook(app, ev) {
		s.opts.Webhooks.Emit(app.webhook, ev)
	}
}

// webhooksOn reports whether app sends webhooks at all, so that per-message
// paths build an event only when someone will receive it.
func (s *Server) webhooksOn(app *App) bool { return s.opts.Webhooks != nil && app.webhook != nil }
