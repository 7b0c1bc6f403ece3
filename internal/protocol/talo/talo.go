// Package talo is the Talo Socket front-end on Switchboard's core: the
// WebSocket that the unchanged Talo Godot plugin and Unity package connect
// to, and the HTTP routes around it (socket tickets, player identify and
// socket tokens, game channels, presence, relationships, live config).
//
// Durable state (games, keys, players, channels, presence...) lives in a
// store (SQLite by default, PostgreSQL by DSN). Everything short-lived that
// must hold across a cluster goes through the engine's KV: single-use
// tickets (KVTake), socket tokens, signature replay windows (KVSetNX) and
// HTTP rate-limit counters (KVIncr). Pushes go through the hub, one
// namespace per game ("talo/<gameID>"): each identified connection
// subscribes to its alias's channels, filtered by the key's scopes at
// subscription time, so an HTTP request served by one node reaches sockets
// on every node.
//
// The behaviour copies the reference backend (TaloDev/backend), see
// /work/shared/specs/talo.md and docs/talo.md for what is implemented and
// the decisions where the reference, its docs and its clients disagree.
package talo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// kvNamespace holds every Talo key in the engine's KV.
const kvNamespace = "talo"

// Options configure a Server. Zero values mean the documented defaults.
type Options struct {
	Hub *hub.Hub // required; its engine must implement engine.KV
	// Store is the database; when nil, NewServer opens one from
	// StorePath / PostgresDSN (and Close closes it).
	Store       *store.Store
	StorePath   string // SQLite file; default "talo.db"
	PostgresDSN string // selects PostgreSQL when set

	Metrics *metrics.Metrics
	Logger  *slog.Logger
	IDs     *transport.IDSource
	Poller  *transport.Poller
	// Transport bounds each connection; MaxMessageBytes is replaced by
	// the option below.
	Transport transport.Options

	// SocketPath is where the WebSocket is served, and every path below
	// it (clients append "/?ticket="); default "/talo".
	SocketPath string
	// SocketListen, when set, is an address where Start binds a listener
	// of its own serving the WebSocket on every path (the reference's
	// shape: a socket_url at the root of a host). WrapSocketListener (TLS)
	// and WrapSocketHandler (connection limits) apply there when set;
	// HeaderTimeout bounds a request's headers (default 10 s).
	SocketListen       string
	WrapSocketListener func(net.Listener) (net.Listener, error)
	WrapSocketHandler  func(http.Handler) http.Handler
	HeaderTimeout      time.Duration
	// APIPrefix puts the HTTP routes under a prefix (default none: /v1 and
	// /public at the root). With APIPrefix equal to SocketPath, a game sets
	// api_url and socket_url to the same base URL.
	APIPrefix       string
	MaxMessageBytes int           // inbound frame; default 64 KiB
	PingInterval    time.Duration // WS ping tick; default 30 s
	MaxConnections  int           // 0: unlimited

	TicketTTL      time.Duration // default 300 s
	SocketTokenTTL time.Duration // default 1 h

	// Socket rate limit: messages per window per connection, before and
	// after identification (default 300 and 3600 per 60 s); after
	// SocketMaxWarnings warnings the connection is closed with 1008.
	SocketLimitUnidentified int
	SocketLimitIdentified   int
	SocketLimitWindow       time.Duration
	SocketMaxWarnings       int // default 3

	// HTTP rate limits per client IP and window (default 20 for the auth
	// routes, 100 elsewhere, per 60 s). DisableRateLimits turns them off.
	HTTPLimitAuth     int
	HTTPLimitDefault  int
	HTTPLimitWindow   time.Duration
	DisableRateLimits bool
	// TrustProxyHeaders takes the client IP from X-Forwarded-For.
	TrustProxyHeaders bool

	// Request signing windows (defaults 300 s, 60 s, 600 s).
	SignatureMaxSkew   time.Duration
	SignatureMaxBehind time.Duration
	SignatureReplayTTL time.Duration

	PageSize int // channel and member pages; default 50

	// The stale-presence sweep (every PresenceSweepInterval, default
	// 10 min) marks offline the players left online for PresenceStaleAfter
	// (default 30 min) with no socket anywhere in the cluster.
	PresenceSweepInterval time.Duration
	PresenceStaleAfter    time.Duration

	// AllowedOrigins are the browser origins allowed to call the HTTP
	// routes (web and WebGL builds); empty allows any ("*").
	AllowedOrigins []string

	// UnityChannelEvents also sends player-joined and player-left under
	// the names Unity's ChannelsAPI listens for (v1.channels.joined and
	// v1.channels.left), which the reference never sends. Godot ignores
	// them; off by default (every member then gets each event twice).
	UnityChannelEvents bool

	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (o *Options) applyDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IDs == nil {
		o.IDs = &transport.IDSource{}
	}
	if o.SocketPath == "" {
		o.SocketPath = "/talo"
	}
	o.SocketPath = "/" + strings.Trim(o.SocketPath, "/")
	if o.APIPrefix = strings.Trim(o.APIPrefix, "/"); o.APIPrefix != "" {
		o.APIPrefix = "/" + o.APIPrefix
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxMessageBytes, 64<<10)
	dur(&o.HeaderTimeout, 10*time.Second)
	dur(&o.PingInterval, 30*time.Second)
	dur(&o.TicketTTL, 300*time.Second)
	dur(&o.SocketTokenTTL, time.Hour)
	def(&o.SocketLimitUnidentified, 300)
	def(&o.SocketLimitIdentified, 3600)
	dur(&o.SocketLimitWindow, 60*time.Second)
	def(&o.SocketMaxWarnings, 3)
	def(&o.HTTPLimitAuth, 20)
	def(&o.HTTPLimitDefault, 100)
	dur(&o.HTTPLimitWindow, 60*time.Second)
	dur(&o.SignatureMaxSkew, 300*time.Second)
	dur(&o.SignatureMaxBehind, 60*time.Second)
	dur(&o.SignatureReplayTTL, 600*time.Second)
	def(&o.PageSize, 50)
	dur(&o.PresenceSweepInterval, 10*time.Minute)
	dur(&o.PresenceStaleAfter, 30*time.Minute)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport.SlowConsumerCode == 0 {
		o.Transport.SlowConsumerCode = 1008
	}
	o.Transport.MaxMessageBytes = o.MaxMessageBytes
}

// Server is the Talo front-end.
type Server struct {
	opts     Options
	log      *slog.Logger
	st       *store.Store
	ownStore bool
	kv       engine.KV
	hub      *hub.Hub
	up       *transport.Upgrader
	pm       *metrics.Conn
	api      *http.ServeMux

	conns connset.Set[*sockConn]

	nsMu   sync.Mutex
	spaces map[int64]bool // game namespaces set up in the hub

	tickBuf []*sockConn

	listenMu sync.Mutex
	ln       net.Listener // SocketListen, once bound
	lnServer *http.Server
}

// NewServer returns a Server; mount it with Mount and run it with Start.
func NewServer(opts Options) (*Server, error) {
	opts.applyDefaults()
	if opts.Hub == nil {
		return nil, errors.New("talo: Options.Hub is required")
	}
	kv, ok := opts.Hub.KV()
	if !ok {
		return nil, errors.New("talo: the cluster engine has no KV store (tickets, tokens and rate limits need one)")
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	s := &Server{opts: opts, log: opts.Logger.With("protocol", "talo"), kv: kv, hub: opts.Hub,
		pm: opts.Metrics.ForConn("talo", ""), spaces: map[int64]bool{}}
	s.st = opts.Store
	if s.st == nil {
		st, err := store.Open(context.Background(), store.Options{Path: opts.StorePath, PostgresDSN: opts.PostgresDSN, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("talo: %w", err)
		}
		s.st, s.ownStore = st, true
	}
	tOpts := opts.Transport
	tOpts.Observer = s.pm
	s.up = &transport.Upgrader{IDs: opts.IDs, Poller: opts.Poller, Options: tOpts}
	s.api = http.NewServeMux()
	s.routes()
	return s, nil
}

// Store is the server's database (for provisioning tools and tests).
func (s *Server) Store() *store.Store { return s.st }

// Close closes the store when the server opened it.
func (s *Server) Close() error {
	if s.ownStore {
		return s.st.Close()
	}
	return nil
}

// Connections is the number of open Talo sockets.
func (s *Server) Connections() int { return s.conns.Len() }

// serveAPI strips a trailing slash (Godot calls GET /v1/game-config/) and
// dispatches to the routes.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		return
	}
	p := strings.TrimPrefix(r.URL.Path, s.opts.APIPrefix)
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = strings.TrimRight(p, "/")
	}
	if p != r.URL.Path {
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r2.URL = &u
		r = &r2
	}
	s.api.ServeHTTP(w, r)
}

// namespace is a game's hub namespace, set up (local counts: Talo has no
// occupancy queries) before its first use.
func (s *Server) namespace(gameID int64) string {
	ns := fmt.Sprintf("talo/%d", gameID)
	s.nsMu.Lock()
	if !s.spaces[gameID] {
		s.spaces[gameID] = true
		s.hub.CountLocally(ns)
	}
	s.nsMu.Unlock()
	return ns
}

// publish sends an encoded response to a hub channel of a game.
func (s *Server) publish(ctx context.Context, gameID int64, channel string, payload []byte) {
	err := s.hub.Publish(ctx, engine.Publication{Namespace: s.namespace(gameID), Channel: channel, Payload: payload})
	if err != nil {
		s.log.Warn("publish failed", "game", gameID, "channel", channel, "err", err)
	}
}

// Hub channels of a game namespace. Connections subscribe only to those
// their key's scopes allow, so fan-out needs no per-recipient filter.
const (
	chanPresence = "presence" // identified, read:playerPresence
	chanConfig   = "config"   // read:gameConfig, identified or not
)

func aliasChannel(aliasID int64, kind string) string {
	return fmt.Sprintf("alias/%d/%s", aliasID, kind)
}

// Per-alias channel kinds and the scope each needs.
const (
	kindChannels      = "gameChannels"        // read:gameChannels
	kindRelationships = "playerRelationships" // read:playerRelationships
	kindBroadcasts    = "playerBroadcasts"    // read:playerBroadcasts
)

var aliasKinds = []string{kindChannels, kindRelationships, kindBroadcasts}

// toAliases publishes one payload to the given kind of channel of each alias.
func (s *Server) toAliases(ctx context.Context, gameID int64, kind string, aliasIDs []int64, payload []byte) {
	for _, id := range aliasIDs {
		s.publish(ctx, gameID, aliasChannel(id, kind), payload)
	}
}

func (s *Server) now() time.Time { return s.opts.Now() }

// corsHeaders are the request headers the clients send.
const corsHeaders = "Authorization, Content-Type, Accept, X-Talo-Dev-Build, X-Talo-Include-Dev-Data, X-Talo-Client, " +
	"X-Talo-Alias, X-Talo-Player, X-Talo-Session, X-Talo-Signature, X-Talo-Continuity-Timestamp"

// cors answers browser builds: it sets the CORS headers for an allowed
// origin and answers preflight requests itself; it reports whether the
// request should go on to the routes.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin != "" {
		allowed := len(s.opts.AllowedOrigins) == 0
		for _, o := range s.opts.AllowedOrigins {
			allowed = allowed || o == "*" || strings.EqualFold(o, origin)
		}
		if allowed {
			h := w.Header()
			if len(s.opts.AllowedOrigins) == 0 {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Expose-Headers", "Retry-After")
		}
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}
