// Package dcl is the Decentraland comms "ws-room" transport (RFC-5 /
// ADR-105) on Switchboard's core: the room server that unchanged Decentraland
// clients (browser explorer, Unity and Godot explorers, the reference
// service's e2e client) reach through `ws-room:` connection strings.
//
// One WebSocket per peer and room, at {prefix}/{roomId}. Binary frames carry
// protobuf WsPacket (dclpb). A peer identifies with its address, signs a
// challenge with a Decentraland auth chain (authchain), gets a welcome with
// its alias and the room's other peers, then sends peer updates that the
// server relays, with from_alias overwritten, to everyone else in the room
// through the hub (namespace "dcl", channel = room id; one encoding per
// update shared by every recipient).
//
// The behaviour copies the reference server, decentraland/ws-room-service
// (see docs/decentraland.md), with
// its weaknesses fixed: stricter auth chains, a CSPRNG challenge, bounded
// send queues, and every rejected input counted by reason.
//
// Across a cluster (cluster.go, docs/decentraland.md "Across a cluster")
// a room's membership is engine presence, the one session per address an
// engine claim, and the peers of a dead node leave through hub.Owner.
//
// Locks follow the server's one order, docs/locking.md (an address's
// gate, then a room's gate, then Server.mu or session.mu, then the hub's).
// The relay of a peer update holds only the sender's session.mu, so
// updates in one room never wait for each other or for joins.
package dcl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Namespace is the hub namespace of every ws-room; rooms are its channels.
const Namespace = "dcl"

// ReasonRoomFull is the reference's peer_kicked reason, for a full room and
// (copied verbatim from the reference) for a session replaced by a newer
// one with the same address.
const ReasonRoomFull = "This world is full. Try again later."

// Options configure a Server. Zero values mean the documented defaults.
type Options struct {
	Hub   *hub.Hub         // required
	Wheel *timewheel.Wheel // required, and running
	// PathPrefixes are where Mount serves rooms: P/{roomId} and P/status
	// for each P (e.g. "/rooms").
	PathPrefixes []string
	// Metrics gets the dcl_ws_rooms_* metrics and the per-protocol
	// counters; nil keeps them private.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	IDs     *transport.IDSource
	// Poller parks idle connections (nil: a goroutine each).
	Poller *transport.Poller
	// Transport bounds each connection; MaxMessageBytes is replaced by
	// the option below and SlowConsumerCode defaults to 1008.
	Transport transport.Options

	HandshakeTimeout time.Duration // per stage; default 1 s
	IdleTimeout      time.Duration // joined peers; default 90 s, pings every third
	MaxMessageBytes  int           // inbound frame; default 16 KiB
	RoomCapacity     int           // joined peers per room; default 150
	MaxConnections   int           // open connections; 0 is unlimited
	// SessionPerRoom makes "one live session per address" hold per room
	// instead of per server (the reference).
	SessionPerRoom bool
	// AllowOwnerMismatch accepts a chain owned by another address than
	// the identified one (the reference never compared them).
	AllowOwnerMismatch bool
	// Contracts verifies EIP-1654 links; nil rejects them (logged).
	Contracts authchain.ContractVerifier
	// VerifyTimeout bounds one auth-chain verification (RPC included);
	// default 30 s.
	VerifyTimeout time.Duration
	// AccessTokenSecret, when set, requires a valid HS256 ?access_token=.
	AccessTokenSecret string

	// Reported by /status and ws_room_service_build_info.
	Version    string
	CommitHash string // default "unknown"
	EthNetwork string // default "mainnet"

	// Now is the clock for handshake-stage deadlines and ephemeral-key
	// expiry (tests step it with the wheel); default time.Now. The idle
	// check of joined peers uses real time: it compares with the
	// transport's LastRead.
	Now func() time.Time
}

// MinMessageBytes is the smallest MaxMessageBytes that still admits an
// auth chain (about 600 bytes for the kernel's three links).
const MinMessageBytes = 1024

// Validate reports every option out of range, in one error naming each.
// Zero values stand for the defaults and are valid; negative ones are not
// (NewServer would otherwise quietly use the default). Mount returns this
// error too, so a server that mounts the routes cannot start with one.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("dcl: "+format, args...)) }
	if o.Hub == nil {
		bad("a hub is required")
	}
	if o.Wheel == nil {
		bad("a timing wheel is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		def  string
	}{
		{"handshake_timeout", o.HandshakeTimeout, "1s"},
		{"idle_timeout", o.IdleTimeout, "90s"},
		{"verify_timeout", o.VerifyTimeout, "30s"},
	} {
		if d.v < 0 {
			bad("%s %v: must not be negative (0 means the default, %s)", d.name, d.v, d.def)
		}
	}
	if o.Wheel != nil {
		tick := o.Wheel.Tick()
		if o.HandshakeTimeout > 0 && o.HandshakeTimeout < tick {
			bad("handshake_timeout %v: shorter than the timer resolution (%v)", o.HandshakeTimeout, tick)
		}
		if o.IdleTimeout > 0 && o.IdleTimeout < 3*tick {
			bad("idle_timeout %v: must be at least 3 timer ticks (%v): peers are pinged every third of it", o.IdleTimeout, 3*tick)
		}
	}
	if o.MaxMessageBytes < 0 || (o.MaxMessageBytes > 0 && o.MaxMessageBytes < MinMessageBytes) {
		bad("max_message_bytes %d: at least %d (an auth chain is about 600 bytes; 0 means the default, 16384)", o.MaxMessageBytes, MinMessageBytes)
	}
	if o.RoomCapacity < 0 {
		bad("room_capacity %d: must not be negative (0 means the default, 150)", o.RoomCapacity)
	}
	if o.MaxConnections < 0 {
		bad("max_connections %d: must not be negative (0 means unlimited)", o.MaxConnections)
	}
	if o.Transport.SendQueueBytes < 0 {
		bad("send_queue_bytes %d: must not be negative", o.Transport.SendQueueBytes)
	}
	return errors.Join(errs...)
}

// ValidatePrefixes checks the path prefixes Mount serves rooms under:
// at least one; each starts with /, is not / and does not end with /;
// no wildcard, query, fragment or space; not a route of the server's own
// (/status, /health, /metrics, /healthz, /readyz); no duplicates.
func ValidatePrefixes(prefixes []string) error {
	if len(prefixes) == 0 {
		return errors.New("dcl: path_prefixes is empty: rooms would be unreachable")
	}
	var errs []error
	seen := map[string]bool{}
	for _, p := range prefixes {
		switch {
		case !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/"):
			errs = append(errs, fmt.Errorf("dcl: path prefix %q: must start with / and not end with / (e.g. /rooms)", p))
		case strings.ContainsAny(p, "{}?# \t\n"):
			errs = append(errs, fmt.Errorf("dcl: path prefix %q: wildcards ({}), ?, # and spaces are not allowed", p))
		case p == "/status" || p == "/health" || p == "/metrics" || p == "/healthz" || p == "/readyz":
			errs = append(errs, fmt.Errorf("dcl: path prefix %q: reserved by the server", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("dcl: path prefix %q listed twice", p))
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

func (o *Options) applyDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IDs == nil {
		o.IDs = &transport.IDSource{}
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16 << 10
	}
	if o.RoomCapacity <= 0 {
		o.RoomCapacity = 150
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 30 * time.Second
	}
	if o.CommitHash == "" {
		o.CommitHash = "unknown"
	}
	if o.EthNetwork == "" {
		o.EthNetwork = "mainnet"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport.SlowConsumerCode == 0 {
		o.Transport.SlowConsumerCode = 1008
	}
	o.Transport.MaxMessageBytes = o.MaxMessageBytes
}

// Server is the ws-room front-end.
type Server struct {
	opts    Options
	optErr  error // Options.Validate before the defaults; Mount returns it
	log     *slog.Logger
	up      *transport.Upgrader
	m       *roomMetrics
	pm      *metrics.Conn // switchboard_* counters for protocol "dcl"
	warnEIP throttle

	aliases   atomic.Uint32 // last alias handed out: from a random base, never reused
	keySuffix string        // of this process's hub connection keys
	baseCtx   atomic.Pointer[context.Context]
	open      atomic.Int64 // connections upgraded or upgrading, for MaxConnections

	conns connset.Set[*session] // every open connection; its lock is a leaf

	// addrGates and roomGates order the joins of one address and the
	// joins and leaves of one room on this node; they are held across
	// store round trips (gate.go, docs/locking.md).
	addrGates gates
	roomGates gates

	mu    sync.Mutex // rooms and changes of sessions; never held across a call out
	rooms map[string]*room
	// sessions are the joined sessions by address key, changed with both
	// mu and sessionsMu held; read under sessionsMu alone.
	sessionsMu sync.Mutex
	sessions   map[string]*session
}

// room is one room's joined peers. Changed under its gate and
// Server.mu; size is also read without either by the relay, for the
// out_* metrics.
type room struct {
	id      string
	members map[*session]struct{}
	size    atomic.Int32
}

var _ frontend.FrontEnd = (*Server)(nil)

// NewServer returns a Server; mount it with Mount.
func NewServer(opts Options) *Server {
	optErr := opts.Validate()
	opts.applyDefaults()
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	s := &Server{
		opts:      opts,
		optErr:    optErr,
		log:       opts.Logger.With("protocol", "dcl"),
		m:         newRoomMetrics(opts.Metrics.Registry, opts.CommitHash, opts.EthNetwork),
		pm:        opts.Metrics.ForConn("dcl", ""),
		warnEIP:   throttle{interval: 10 * time.Second},
		rooms:     map[string]*room{},
		sessions:  map[string]*session{},
		keySuffix: randomKeySuffix(),
	}
	s.aliases.Store(randomAliasBase())
	tOpts := opts.Transport
	tOpts.Observer = s.pm
	s.up = &transport.Upgrader{
		IDs:     opts.IDs,
		Poller:  opts.Poller,
		Options: tOpts,
		// Echo the first offered subprotocol, whatever it is (rfc5, rfc4,
		// comms-ws-transport), as uWebSockets.js does: browsers fail the
		// handshake when they offered one and none comes back.
		Subprotocol: func(string) bool { return true },
	}
	ctx := context.Background()
	s.baseCtx.Store(&ctx)
	if opts.Hub != nil {
		// Rooms keep their own counts; the hub's occupancy stays on this
		// node and costs a cluster's store nothing.
		opts.Hub.CountLocally(Namespace)
		// Peers of a node that died are announced as gone by a survivor.
		opts.Hub.Own(Namespace, s)
	}
	return s
}

// Name implements frontend.FrontEnd.
func (s *Server) Name() string { return "dcl" }

// Endpoints lists each prefix's room URL (a client appends the room id).
func (s *Server) Endpoints() []frontend.Endpoint {
	eps := make([]frontend.Endpoint, 0, len(s.opts.PathPrefixes))
	for _, p := range s.opts.PathPrefixes {
		eps = append(eps, frontend.Endpoint{Kind: frontend.KindWebSocket, Path: p + "/{roomId}", Note: "ws-room"})
	}
	return eps
}

// Start implements frontend.FrontEnd: verifications started from now on
// are canceled when ctx ends.
func (s *Server) Start(ctx context.Context) error {
	s.baseCtx.Store(&ctx)
	return nil
}

// Drain refuses new connections, closes every open one (close code 1001,
// no WsPacket) and waits, bounded by ctx, until all have gone.
func (s *Server) Drain(ctx context.Context) {
	s.conns.Drain(ctx, func(ss *session) { ss.end("", 1001) })
}

// Connections is the number of open ws-room connections.
func (s *Server) Connections() int { return s.conns.Len() }

// Mount registers the routes: for each prefix P, GET P/{roomId} (the
// WebSocket) and GET P/status; then GET /status and /health/live. A
// registration that clashes with another route is returned as an error.
func (s *Server) Mount(mux *http.ServeMux) (err error) {
	if err := errors.Join(s.optErr, ValidatePrefixes(s.opts.PathPrefixes)); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dcl.path_prefixes: routes: %v", r)
		}
	}()
	for _, p := range s.opts.PathPrefixes {
		prefix := p
		mux.HandleFunc("GET "+prefix+"/{roomId}", func(w http.ResponseWriter, r *http.Request) {
			s.ServeRoom(w, r, rawSegment(r, prefix))
		})
		mux.HandleFunc("GET "+prefix+"/status", func(w http.ResponseWriter, r *http.Request) {
			if transport.IsUpgradeRequest(r.Header) { // a room called "status"
				s.ServeRoom(w, r, rawSegment(r, prefix))
				return
			}
			s.ServeStatus(w, r)
		})
		mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found"})
		})
	}
	mux.HandleFunc("GET /status", s.ServeStatus)
	mux.HandleFunc("/health/live", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write([]byte("alive"))
	})
	return nil
}

// rawSegment is the room id as the reference keys it: the path segment
// after the prefix, not percent-decoded.
func rawSegment(r *http.Request, prefix string) string {
	return strings.TrimPrefix(r.URL.EscapedPath(), prefix+"/")
}

// ServeRoom upgrades a request for room roomID. The query string is
// ignored, except ?access_token= when a secret is configured.
func (s *Server) ServeRoom(w http.ResponseWriter, r *http.Request, roomID string) {
	if s.conns.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Server is shutting down"})
		return
	}
	// The seat is taken before the upgrade, so concurrent upgrades cannot
	// pass the cap; HandleClose (or a failed upgrade) gives it back.
	if n := s.open.Add(1); s.opts.MaxConnections > 0 && n > int64(s.opts.MaxConnections) {
		s.open.Add(-1)
		s.pm.Error("server_full")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Server is full"})
		return
	}
	upgraded := false
	defer func() {
		if !upgraded {
			s.open.Add(-1)
		}
	}()
	var peerID string
	if s.opts.AccessTokenSecret != "" {
		var err error
		peerID, err = checkAccessToken([]byte(s.opts.AccessTokenSecret), r.URL.Query().Get("access_token"), r.URL.EscapedPath())
		if err != nil {
			reason := "token_invalid"
			if errors.Is(err, errNoToken) {
				reason = "token_missing"
			}
			s.pm.Error(reason)
			s.log.Debug("access token refused", "remote", r.RemoteAddr, "room", roomID, "err", err)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Invalid access token"})
			return
		}
	}
	// The request's strings share one copy of its head (wsaccept): a
	// session that kept a piece of it would keep all of it, about 200 B
	// per peer in a heap profile of 2,000 idle peers.
	roomID = strings.Clone(roomID)
	err := s.up.Upgrade(w, r, nil, func(c transport.Conn) transport.Handler {
		upgraded = true
		return s.newSession(c, roomID, peerID)
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

// Status is the reference's /status body.
type Status struct {
	Version     string       `json:"version"`
	CurrentTime int64        `json:"currentTime"`
	CommitHash  string       `json:"commitHash"`
	Users       int          `json:"users"`
	Rooms       int          `json:"rooms"`
	Details     []RoomStatus `json:"details"`
}

// RoomStatus is one room in Status.Details.
type RoomStatus struct {
	RoomName string `json:"roomName"`
	Count    int    `json:"count"`
}

// Status reports the joined peers and rooms, rooms sorted by name.
func (s *Server) Status() Status {
	st := Status{Version: s.opts.Version, CurrentTime: time.Now().UnixMilli(), CommitHash: s.opts.CommitHash, Details: []RoomStatus{}}
	s.mu.Lock()
	st.Users, st.Rooms = len(s.sessions), len(s.rooms)
	for id, r := range s.rooms {
		st.Details = append(st.Details, RoomStatus{RoomName: id, Count: len(r.members)})
	}
	s.mu.Unlock()
	slices.SortFunc(st.Details, func(a, b RoomStatus) int { return strings.Compare(a.RoomName, b.RoomName) })
	return st
}

// ServeStatus serves /status and {prefix}/status.
func (s *Server) ServeStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// throttle lets one event through per interval.
type throttle struct {
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
}

func (t *throttle) allow() bool {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last) < t.interval {
		return false
	}
	t.last = now
	return true
}

// aliasKey is an alias as a presence member's user id.
func aliasKey(alias uint32) string { return strconv.FormatUint(uint64(alias), 10) }

// connKey is a session's hub connection key: its alias and this
// process's suffix, unique across the cluster.
func (s *Server) connKey(alias uint32) string { return aliasKey(alias) + "." + s.keySuffix }
