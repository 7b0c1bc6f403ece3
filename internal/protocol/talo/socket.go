package talo

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Close codes (spec section 2.5).
const (
	closeBadTicket = 3000
	closeRateLimit = 1008
)

var (
	msgConnected = transport.Text([]byte(`{"res":"v1.connected","data":{}}`))
	msgHeartbeat = []byte(heartbeat)
)

// sockConn is one Talo socket. Its fields after conn are fixed at connect
// (the key's scopes are a snapshot, as in the reference); the identified
// alias changes under mu. Messages are handled on the connection's reader
// goroutine, one at a time.
type sockConn struct {
	s        *Server
	conn     transport.Conn
	hubKey   string
	ns       string
	game     store.Game
	keyID    int64
	scopes   []string
	devBuild bool

	mu       sync.Mutex
	aliasID  int64
	playerID string
	subs     []string // hub channels subscribed to
	closed   bool

	// Heartbeat: pingedAt is when the last unanswered ping went out (0:
	// none outstanding); any frame read since counts as the answer.
	pingedAt atomic.Int64
	warnings atomic.Int32

	// Rate-limit window, touched only by the reader goroutine.
	windowStart time.Time
	windowCount int

	// Its place in the front-end's connection set.
	connset.Slot
}

// Deliver implements hub.Subscriber.
func (c *sockConn) Deliver(m *transport.Message) { _ = c.conn.Send(m) }

// DeliverBatch implements hub.BatchSubscriber: a busy channel's waiting
// broadcasts in one write.
func (c *sockConn) DeliverBatch(ms []*transport.Message) { _ = transport.SendAll(c.conn, ms) }

// Terminate implements hub.Subscriber.
func (c *sockConn) Terminate() { c.conn.Close(closeBadTicket, "") }

// Transport implements hub.Inspectable (the console's connection list).
func (c *sockConn) Transport() transport.Conn { return c.conn }

var _ hub.Subscriber = (*sockConn)(nil)

func (c *sockConn) send(res string, data any) { _ = c.conn.Send(transport.Text(encodeRes(res, data))) }

func (c *sockConn) sendError(e socketError) {
	c.s.pm.Error(strings.ToLower(e.ErrorCode))
	c.send("v1.error", e)
}

func (c *sockConn) identified() (aliasID int64, playerID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aliasID, c.playerID
}

// refusal is the handler of a socket whose ticket was refused: it was
// closed with 3000 right after the upgrade and ignores what arrives.
type refusal struct{}

func (refusal) HandleMessage([]byte, bool)      {}
func (refusal) HandleClose(transport.CloseInfo) {}

// ServeSocket upgrades a request on the socket path. The ticket is taken
// (single use, cluster-wide) before the upgrade; the handshake completes
// either way and a bad ticket is then closed with 3000, as the reference
// does.
func (s *Server) ServeSocket(w http.ResponseWriter, r *http.Request) {
	if !transport.IsUpgradeRequest(r.Header) {
		http.Error(w, "Upgrade Required", http.StatusUpgradeRequired)
		return
	}
	if s.conns.Draining() || (s.opts.MaxConnections > 0 && s.conns.Len() >= s.opts.MaxConnections) {
		s.pm.Error("server_full")
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	c, reason := s.redeemTicket(r.Context(), r.URL.Query().Get("ticket"))
	err := s.up.Upgrade(w, r, nil, func(conn transport.Conn) transport.Handler {
		if c == nil {
			s.pm.Error(reason)
			s.log.Debug("socket ticket refused", "remote", r.RemoteAddr, "reason", reason)
			conn.Close(closeBadTicket, "")
			return refusal{}
		}
		c.conn = conn
		// Unique in the cluster: the signed-in users are counted by it.
		c.hubKey = s.hub.NodeID() + "/" + strconv.FormatUint(conn.ID(), 10)
		s.pm.Open.Inc() // HandleClose decrements it
		if s.conns.Add(c) {
			conn.Close(1001, "server shutting down")
			return c
		}
		_ = conn.Send(msgConnected)
		s.pm.Accepted.Inc()
		s.hub.Connect(c.ns, c.hubKey, c)
		if hasScope(c.scopes, "read:gameConfig") {
			c.subscribe(chanConfig)
		}
		s.log.Debug("socket connected", "game", c.game.ID, "key", c.keyID, "conn", c.hubKey, "dev_build", c.devBuild)
		return c
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

// redeemTicket takes a ticket and loads its (non-revoked) key and game;
// nil and a metric reason when refused.
func (s *Server) redeemTicket(ctx context.Context, ticket string) (*sockConn, string) {
	if ticket == "" {
		return nil, "ticket_missing"
	}
	v, ok, err := s.kv.KVTake(ctx, kvNamespace, "ticket:"+ticket)
	if err != nil {
		s.log.Warn("ticket lookup failed", "err", err)
		return nil, "ticket_error"
	}
	if !ok {
		return nil, "ticket_unknown"
	}
	keyPart, dev, _ := strings.Cut(string(v), ":")
	keyID, _ := strconv.ParseInt(keyPart, 10, 64)
	k, err := s.st.AccessKey(ctx, keyID)
	if err != nil || k.RevokedAt != nil {
		return nil, "ticket_key_revoked"
	}
	g, err := s.st.Game(ctx, k.GameID)
	if err != nil {
		return nil, "ticket_key_revoked"
	}
	return &sockConn{s: s, ns: s.namespace(g.ID), game: g, keyID: k.ID, scopes: k.Scopes, devBuild: dev == "1"}, ""
}

// subscribe adds the connection to a hub channel of its game once.
func (c *sockConn) subscribe(ch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if _, err := c.s.hub.Subscribe(context.Background(), c.ns, ch, c); err != nil && !errors.Is(err, hub.ErrAlreadySubscribed) {
		c.s.log.Warn("subscribe failed", "channel", ch, "err", err)
		return
	}
	for _, have := range c.subs {
		if have == ch {
			return
		}
	}
	c.subs = append(c.subs, ch)
}

// unsubscribeAliasLocked leaves the per-alias channels of the current alias.
func (c *sockConn) unsubscribeAliasLocked() {
	keep := c.subs[:0]
	for _, ch := range c.subs {
		if strings.HasPrefix(ch, "alias/") {
			_, _, _ = c.s.hub.Unsubscribe(context.Background(), c.ns, ch, c)
			continue
		}
		keep = append(keep, ch)
	}
	c.subs = keep
}

// HandleMessage is the router (spec section 5): rate limit, heartbeat,
// JSON and envelope, signature, listener, player, scopes, data, handler.
func (c *sockConn) HandleMessage(data []byte, _ bool) {
	if !c.allow() {
		return
	}
	if bytes.Equal(data, msgHeartbeat) {
		c.alive()
		_ = c.conn.Send(transport.Text(msgHeartbeat))
		return
	}
	aliasID, _ := c.identified()
	verifying := c.game.VerifyRequests && aliasID != 0
	body, sig := data, ""
	if verifying {
		sig, body = splitSignature(data)
	}
	env := decodeEnvelope(body)
	if env.err != nil {
		c.sendError(*env.err)
		return
	}
	if verifying {
		if err := c.s.verifySignature(context.Background(), c.game.ID, aliasID, sig, body); err != nil {
			c.s.log.Debug("socket signature refused", "alias", aliasID, "err", err)
			c.sendError(newSocketError(env.req, errInvalidSignature, nil))
			return
		}
	}
	l := listeners[env.req]
	if l.requirePlayer && aliasID == 0 {
		c.sendError(newSocketError(env.req, errNoPlayer, nil))
		return
	}
	if missing := missingScopes(c.scopes, l.scopes); len(missing) > 0 {
		e := newSocketError(env.req, errMissingScopes, nil)
		e.Message = "Missing access key scope(s): " + strings.Join(missing, ", ")
		c.sendError(e)
		return
	}
	d, ok := decodeData(env.req, env.data)
	if !ok {
		c.sendError(newSocketError(env.req, errInvalidData, jsCause(env.data)))
		return
	}
	var err error
	switch d := d.(type) {
	case identifyData:
		err = c.identify(d)
	case messageData:
		err = c.channelMessage(d)
	case broadcastData:
		err = c.broadcast(d)
	}
	if err != nil {
		var le listenerError
		if errors.As(err, &le) {
			cause := le.cause
			c.sendError(newSocketError(env.req, errListener, &cause))
			return
		}
		var se socketError
		if errors.As(err, &se) {
			c.sendError(se)
			return
		}
		// A store or cluster failure: logged here, not shown to the client.
		c.s.log.Error("socket request failed", "req", env.req, "err", err)
		cause := "Internal error"
		c.sendError(newSocketError(env.req, errListener, &cause))
	}
}

// listenerError is a handler failure reported as LISTENER_ERROR with cause.
type listenerError struct{ cause string }

func (e listenerError) Error() string { return e.cause }

func (e socketError) Error() string { return e.ErrorCode }

// allow applies the per-connection rate limit (a fixed window; a count
// that only this connection's reader touches needs no cluster store).
func (c *sockConn) allow() bool {
	now := c.s.now()
	if now.Sub(c.windowStart) >= c.s.opts.SocketLimitWindow {
		c.windowStart, c.windowCount = now, 0
	}
	c.windowCount++
	limit := c.s.opts.SocketLimitUnidentified
	if a, _ := c.identified(); a != 0 {
		limit = c.s.opts.SocketLimitIdentified
	}
	if c.windowCount <= limit {
		return true
	}
	if w := c.warnings.Add(1); int(w) > c.s.opts.SocketMaxWarnings {
		c.s.pm.Error("rate_limit_close")
		c.conn.Close(closeRateLimit, errRateLimit)
		return false
	}
	c.sendError(newSocketError("unknown", errRateLimit, nil))
	return false
}

// alive records an answer to the heartbeat and forgives one warning.
func (c *sockConn) alive() {
	c.pingedAt.Store(0)
	for {
		w := c.warnings.Load()
		if w <= 0 || c.warnings.CompareAndSwap(w, w-1) {
			return
		}
	}
}

// heartbeat pings every connection each PingInterval and ends those that
// read nothing (no pong, no frame) since the previous ping.
func (s *Server) heartbeat(ctx context.Context) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Server) tick() {
	buf := s.conns.AppendTo(s.tickBuf[:0])
	for _, c := range buf {
		pinged := c.pingedAt.Load()
		if pinged != 0 && c.conn.LastRead().UnixNano() < pinged {
			s.pm.Error("heartbeat_timeout")
			// The reference terminates without a close frame; the
			// transport always writes one, with no status code.
			c.conn.Close(0, "")
			continue
		}
		if pinged != 0 {
			c.alive()
		}
		c.pingedAt.Store(time.Now().UnixNano())
		c.conn.Ping()
	}
	clear(buf)
	s.tickBuf = buf
}

// HandleClose marks the player offline (presence, temporary channels)
// and forgets the connection. It leaves the connection set last, so that
// Drain returns only when every close has been fully handled (the store
// may be closed right after).
func (c *sockConn) HandleClose(info transport.CloseInfo) {
	c.mu.Lock()
	c.closed = true
	aliasID, playerID := c.aliasID, c.playerID
	for _, ch := range c.subs {
		_, _, _ = c.s.hub.Unsubscribe(context.Background(), c.ns, ch, c)
	}
	c.subs = nil
	c.mu.Unlock()
	if playerID != "" {
		c.userOffline(playerID)
	}
	c.s.hub.Disconnect(c.ns, c.hubKey)
	c.s.log.Debug("socket closed", "game", c.game.ID, "conn", c.hubKey, "code", info.Code, "err", info.Err)
	if aliasID != 0 {
		off := false
		if err := c.s.setPresence(context.Background(), c.game, aliasID, playerID, &off, nil); err != nil {
			c.s.log.Warn("offline presence failed", "alias", aliasID, "err", err)
		}
	}
	c.s.pm.Open.Dec()
	c.s.conns.Remove(c)
}
