package pusher

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// session is one Pusher connection. HandleMessage and HandleClose run on
// the connection's reader goroutine; Deliver, Terminate and the timers run
// elsewhere, so the state they share is under mu.
// A session exists per connection, so its size counts: the times are unix
// nanoseconds rather than time.Time (24 bytes each) and the flags share a
// word, which brings it from 208 to 176 bytes (size classes; measured with
// TestMemoryPerIdleConnection in internal/server).
type session struct {
	srv  *Server
	app  *App
	conn transport.Conn
	id   string // socket_id

	mu   sync.Mutex
	subs subSet
	user *signedInUser

	// Liveness state, touched only by the wheel goroutine.
	liveness *timewheel.Timer
	pingAt   int64            // unix ns of the ping sent, when pingSent
	authWait *timewheel.Timer // only when the app requires authentication

	// Client-event token bucket, touched only by the reader goroutine.
	tokens   float64
	tokensAt int64   // unix ns
	ctx      workCtx // cancelled by HandleClose

	closed   bool // under mu
	pingSent bool // wheel goroutine only
	quota    bool // holds a place in the app's connection quota (set before it is shared)

	// Its place in the front-end's connection set.
	connset.Slot
}

type subscription struct {
	name   string
	kind   Channel
	member string // presence user id
}

func observerFor(app *App) transport.Observer {
	if app == nil {
		return nil
	}
	return app.Metrics
}

func (s *Server) newSession(app *App, c transport.Conn) *session {
	ss := &session{
		srv: s, app: app, conn: c, id: s.socketID(c.ID()),
		tokens: float64(app.Limits.ClientEventsPerSecond), tokensAt: s.opts.Now().UnixNano(),
	}
	draining := s.sessions.Add(ss)
	s.opts.Hub.Connect(app.ID, ss.id, ss)
	app.Metrics.Open.Inc()
	app.Metrics.Accepted.Inc()

	activity := int(s.opts.ActivityTimeout / time.Second)
	data := `{"socket_id":"` + ss.id + `","activity_timeout":` + strconv.Itoa(activity) + `}`
	ss.send(newEvent("pusher:connection_established").dataString(data).bytes())

	ss.liveness = s.opts.Wheel.NewTimer(ss.checkLiveness)
	ss.liveness.Reset(timewheel.Spread(s.opts.ActivityTimeout))
	if app.UserAuthentication {
		ss.authWait = s.opts.Wheel.Schedule(app.AuthTimeout, ss.checkAuthenticated)
	}
	if draining { // accepted while Drain was collecting connections
		ss.fail(4200, "Server is shutting down; reconnect.")
	}
	return ss
}

func (ss *session) send(b []byte) { _ = ss.conn.Send(transport.Text(b)) }

// sendError sends a non-fatal pusher:error (code null unless given).
func (ss *session) sendError(code int, reason, msg, channel string) {
	ss.app.Metrics.Error(reason)
	ss.send(errorEvent(code, msg, channel))
}

// fail sends pusher:error with code, then closes with the same code.
func (ss *session) fail(code int, msg string) {
	ss.srv.log.Debug("closing connection", "app", ss.app.ID, "socket_id", ss.id, "code", code, "reason", msg)
	ss.send(errorEvent(code, msg, ""))
	ss.conn.Close(uint16(code), msg)
}

// Deliver implements hub.Subscriber.
func (ss *session) Deliver(m *transport.Message) { _ = ss.conn.Send(m) }

// DeliverBatch implements hub.BatchSubscriber: a busy channel's waiting
// broadcasts in one write.
func (ss *session) DeliverBatch(ms []*transport.Message) { _ = transport.SendAll(ss.conn, ms) }

// Transport implements hub.Inspectable (the console's connection list).
func (ss *session) Transport() transport.Conn { return ss.conn }

// Terminate implements hub.Subscriber: the app asked to end this user's
// connections. 4009 makes pusher-js stay disconnected.
func (ss *session) Terminate() {
	ss.srv.log.Info("connection terminated by the app", "app", ss.app.ID, "socket_id", ss.id)
	ss.fail(4009, "You got disconnected by the app.")
}

// HandleMessage implements transport.Handler.
func (ss *session) HandleMessage(data []byte, _ bool) {
	// Binary frames are not part of the protocol, but soketi parses them
	// as JSON and some clients rely on that; decoding decides.
	// The usual shapes take the allocation-free scan (client events go
	// straight on from it); anything it declines is decoded as before.
	// env.Data may then point into the frame: every handler decodes what
	// it keeps before returning.
	var env Envelope
	if raw, ok := scanEnvelope(data); ok {
		if bytes.HasPrefix(raw.event, clientEventPrefix) {
			ss.clientEvent(raw)
			return
		}
		env = Envelope{Event: eventName(raw.event), Channel: string(raw.channel), Data: raw.data}
	} else {
		var err error
		if env, err = DecodeEnvelope(data); err != nil {
			ss.sendError(0, "bad_json", "Invalid message: "+err.Error()+". Messages must be JSON objects with an event.", "")
			return
		}
	}
	switch {
	case env.Event == "pusher:ping":
		ss.send(pongMessage)
	case env.Event == "pusher:pong":
		// Liveness only; the transport recorded the read.
	case env.Event == "pusher:subscribe":
		ss.subscribe(env)
	case env.Event == "pusher:unsubscribe":
		ss.unsubscribe(env)
	case env.Event == "pusher:signin":
		ss.signin(env)
	case strings.HasPrefix(env.Event, "client-"):
		ss.clientEvent(rawEnvelope{event: []byte(env.Event), channel: []byte(env.Channel), data: env.Data})
	default:
		ss.sendError(0, "unknown_event", "Unknown event "+strconv.Quote(truncate(env.Event, 64))+
			". Client events must start with client-.", "")
	}
}

var clientEventPrefix = []byte("client-")

// eventName returns the protocol's own event names without a copy.
func eventName(b []byte) string {
	switch string(b) {
	case "pusher:ping":
		return "pusher:ping"
	case "pusher:pong":
		return "pusher:pong"
	case "pusher:subscribe":
		return "pusher:subscribe"
	case "pusher:unsubscribe":
		return "pusher:unsubscribe"
	case "pusher:signin":
		return "pusher:signin"
	}
	return string(b)
}

var (
	pongMessage = newEvent("pusher:pong").dataString("{}").bytes()
	pingMessage = newEvent("pusher:ping").dataString("{}").bytes()
)

// checkLiveness runs on the wheel: after activity_timeout of silence (up
// to an eighth more, so that connections made together are not pinged
// together: timewheel.Spread) the server sends pusher:ping; after
// pong_timeout more it closes with 4201.
func (ss *session) checkLiveness() {
	now := time.Now()
	last := ss.conn.LastRead()
	timeout, pong := ss.srv.opts.ActivityTimeout, ss.srv.opts.PongTimeout
	if ss.pingSent {
		if last.UnixNano() > ss.pingAt {
			ss.pingSent = false
		} else {
			ss.app.Metrics.Error("pong_timeout")
			ss.fail(4201, "Pong reply not received")
			return
		}
	}
	if idle := now.Sub(last); idle < timeout {
		ss.liveness.Reset(timewheel.Spread(timeout) - idle)
		return
	}
	ss.send(pingMessage)
	ss.conn.Ping() // a control ping too: clients that can't answer pusher:ping answer this
	ss.pingSent, ss.pingAt = true, now.UnixNano()
	ss.liveness.Reset(pong)
}

// checkAuthenticated closes a connection that, in an app requiring user
// authentication, neither signed in nor joined a private or presence
// channel in time.
func (ss *session) checkAuthenticated() {
	ss.mu.Lock()
	ok := ss.user != nil
	for _, sub := range ss.subs.list() {
		ok = ok || sub.kind.NeedsAuth()
	}
	ss.mu.Unlock()
	if !ok {
		ss.app.Metrics.Error("auth_timeout")
		ss.fail(4009, "Connection not authorized within timeout.")
	}
}

// HandleClose implements transport.Handler: leave every channel (with the
// member_removed, vacated and offline events that implies), then forget
// the connection.
func (ss *session) HandleClose(info transport.CloseInfo) {
	ss.liveness.Stop()
	if ss.authWait != nil {
		ss.authWait.Stop()
	}
	ss.mu.Lock()
	ss.closed = true
	subs := ss.subs.list()
	ss.subs = subSet{}
	user := ss.user
	ss.mu.Unlock()

	ctx := context.Background()
	for _, sub := range subs {
		ss.leave(ctx, sub)
	}
	if user != nil {
		ss.signout(ctx, user)
	}
	ss.ctx.cancel()
	ss.srv.opts.Hub.Disconnect(ss.app.ID, ss.id)
	if ss.quota {
		ss.srv.releaseQuota(ss.app)
	}
	ss.srv.sessions.Remove(ss)
	ss.app.Metrics.Open.Dec()
	ss.srv.log.Debug("connection closed", "app", ss.app.ID, "socket_id", ss.id,
		"code", info.Code, "reason", info.Reason, "by_server", info.ByServer, "err", info.Err)
}
