package damon

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Server-built messages: constants from the wire package, wrapped once and
// shared by every connection (a Message is immutable once sent).
var (
	msgPing = transport.Text([]byte(wire.MsgPing))
	msgPong = transport.Text([]byte(wire.MsgPong))
)

// WebSocket close codes that follow the DISCONNECT document on the
// WebSocket front-end (the raw TCP socket is simply closed).
const (
	closeIdentifyFailed uint16 = 1008 // policy violation
	closeTooBig         uint16 = 1009 // message too big
	closePingTimeout    uint16 = 1000
	closeShutdown       uint16 = 1001 // going away
	closeTerminated     uint16 = 1000
	closeThrottled      uint16 = 1013 // try again later: IDENTIFY refused unchecked
)

type disconnectKind uint8

const (
	discIdentifyFailed disconnectKind = iota
	discTooBig
	discPingTimeout
	discCount
)

var disconnects = [discCount]struct {
	msg    *transport.Message
	code   uint16
	reason string // metric label and WebSocket close reason
}{
	discIdentifyFailed: {transport.Text([]byte(wire.MsgIdentifyFailed)), closeIdentifyFailed, "IDENTIFY_FAILED"},
	discTooBig:         {transport.Text([]byte(wire.MsgMessageTooBig)), closeTooBig, "MESSAGE_TOO_BIG"},
	discPingTimeout:    {transport.Text([]byte(wire.MsgPingTimeout)), closePingTimeout, "PING_TIMEOUT"},
}

// errStop ends a Feed call once the session is closing, so documents that
// arrived behind the one that closed it are not acted upon (the reference
// destroys the socket at once).
var errStop = errors.New("damon: session closing")

// session is one Damon connection, TCP or WebSocket. HandleMessage and
// HandleClose run on the connection's reader goroutine, which alone touches
// the fields marked "reader only". Deliver runs on publishers' goroutines
// and the heartbeat on its own; they share only the atomics.
type session struct {
	srv  *Server
	conn transport.Conn
	id   wire.UUID
	key  string        // id as a string: hub connection key
	dec  *wire.Decoder // raw TCP only; nil on WebSocket
	emit func(wire.Frame) error

	closing      atomic.Bool // a disconnect was sent or the socket closed: ignore input
	awaitingPong atomic.Bool // pinged on the last tick, no {"op":4} since

	// reader only
	identified bool
	subscribed bool   // to "global" and "direct:<id>"
	group      string // hub channel of the current group, "" for none
	probe      []byte // scratch for encodeEvent

	// Its place in the front-end's connection set.
	connset.Slot
}

func (s *Server) newSession(c transport.Conn, tcp bool) transport.Handler {
	ss := &session{srv: s, conn: c, id: newUUID()}
	ss.key = ss.id.String()
	if tcp {
		ss.dec = wire.NewDecoder(s.limits)
		ss.emit = ss.frame
	}
	if s.sessions.Add(ss) {
		ss.closing.Store(true)
		c.Close(closeShutdown, "server shutting down")
	}
	s.opts.Hub.Connect(Namespace, ss.key, ss)
	s.obs.Open.Inc()
	s.obs.Accepted.Inc()
	if !s.opts.RequireIdentify {
		ss.subscribe()
	}
	return ss
}

// subscribe joins "global" and "direct:<id>": at accept time by default
// (the reference delivers GLOBAL and DIRECT to unidentified sockets), at
// the first successful IDENTIFY with require_identify.
func (ss *session) subscribe() {
	if ss.subscribed {
		return
	}
	ss.subscribed = true
	ss.join(chanGlobal)
	ss.join(chanDirectPrfx + ss.key)
}

func (ss *session) join(ch string) {
	if _, err := ss.srv.opts.Hub.Subscribe(context.Background(), Namespace, ch, ss); err != nil {
		ss.srv.log.Warn("subscribe failed", "channel", ch, "err", err)
	}
}

func (ss *session) leave(ch string) {
	if _, _, err := ss.srv.opts.Hub.Unsubscribe(context.Background(), Namespace, ch, ss); err != nil {
		ss.srv.log.Warn("unsubscribe failed", "channel", ch, "err", err)
	}
}

// HandleMessage implements transport.Handler. On TCP data is whatever one
// read returned; on WebSocket it is one message, i.e. one document.
func (ss *session) HandleMessage(data []byte, _ bool) {
	if ss.closing.Load() {
		return
	}
	if ss.dec == nil {
		ss.handle(data)
		return
	}
	if err := ss.dec.Feed(data, ss.emit); errors.Is(err, wire.ReasonTooBig) {
		ss.disconnect(discTooBig)
	}
}

// frame is the decoder's emit callback.
func (ss *session) frame(f wire.Frame) error {
	if f.Bad != wire.ReasonNone {
		ss.srv.m.drop(f.Bad)
	} else {
		ss.handle(f.Doc)
	}
	if ss.closing.Load() {
		return errStop
	}
	return nil
}

// handle acts on one document, as the reference's Router.onMessage.
func (ss *session) handle(doc []byte) {
	env, err := ss.srv.limits.ParseEnvelope(doc)
	if err != nil {
		r, _ := err.(wire.Reason)
		if r == wire.ReasonTooBig { // WebSocket only: the decoder never emits one
			ss.disconnect(discTooBig)
			return
		}
		ss.srv.m.drop(r)
		return
	}
	switch env.Op {
	case wire.OpEvent, wire.OpReply:
		ss.forward(&env, doc)
	case wire.OpIdentify:
		ss.identify(&env)
	case wire.OpPing:
		_ = ss.conn.Send(msgPong) // does not count as liveness, as in the reference
	case wire.OpPong:
		ss.awaitingPong.Store(false)
	case wire.OpDisconnect:
		// Ignored, as in the reference; the client closes the socket itself.
	}
}

// identify is the reference's Client.identify, plus the group membership
// it forgets to register.
func (ss *session) identify(env *wire.Envelope) {
	srv := ss.srv
	var src netip.Prefix
	if srv.idLim != nil {
		src = sourceKey(ss.conn.RemoteAddr())
		ok, first := srv.idLim.take(src)
		if !ok {
			ss.throttled(src, first)
			return
		}
	}
	if !env.Identify.Accept(srv.opts.Token) {
		srv.m.identifyRejected[rejectBadToken].Inc()
		ss.disconnect(discIdentifyFailed)
		return
	}
	if srv.idLim != nil {
		srv.idLim.giveBack(src)
	}
	group := ""
	if key, ok := env.Identify.Group.MapKey(); ok {
		group = chanGroupPrefix + key
	} // an object or array group is truthy but, as in JavaScript, matches nothing
	if group != ss.group {
		if ss.group != "" {
			ss.leave(ss.group)
		}
		if group != "" {
			ss.join(group)
		}
		ss.group = group
	}
	ss.identified = true
	ss.subscribe()
	// Membership is in place before the reply leaves, so a client may
	// address its group as soon as it reads its id.
	_ = ss.conn.Send(transport.Text(wire.AppendIdentifyReply(make([]byte, 0, 72), ss.id, ss.srv.pingMS)))
}

// forward routes an EVENT or REPLY by its intent, as Router.forward.
func (ss *session) forward(env *wire.Envelope, doc []byte) {
	srv := ss.srv
	if srv.opts.RequireIdentify && !ss.identified {
		srv.m.drop(reasonUnidentified)
		return
	}
	var ch string
	switch env.Target {
	case wire.TargetGlobal:
		ch = chanGlobal
	case wire.TargetGroup:
		key, ok := env.Identifier.MapKey()
		if !ok {
			srv.m.drop(wire.ReasonNoRecipient)
			return
		}
		ch = chanGroupPrefix + key
	case wire.TargetDirect:
		// The reference looks the identifier up in a Map keyed by uuid
		// strings, so only a string can match.
		if env.Identifier.Kind() != wire.KindString {
			srv.m.drop(wire.ReasonNoRecipient)
			return
		}
		ch = chanDirectPrfx + string(env.Identifier.Text())
	default:
		srv.m.drop(wire.ReasonBadTarget)
		return
	}
	// A GROUP with nobody in it on this node counts as no_recipient (the
	// publication still goes out: with a cluster engine members elsewhere
	// get it). A DIRECT does not: only the node holding the uuid's socket
	// has interest in direct:<uuid>, so on every other node "no local
	// subscriber" is the normal case, not a drop.
	if env.Target == wire.TargetGroup && srv.opts.Hub.LocalSubscribers(Namespace, ch) == 0 {
		srv.m.drop(wire.ReasonNoRecipient)
	}
	var payload []byte
	var err error
	op := 0
	if env.Op == wire.OpEvent {
		payload, err = ss.encodeEvent(env)
	} else {
		op = 1
		payload, err = env.AppendCanonical(make([]byte, 0, len(doc)))
	}
	if err != nil {
		r, _ := err.(wire.Reason)
		srv.m.drop(r)
		return
	}
	srv.m.forwarded[op][env.Target].Inc()
	if err := srv.opts.Hub.Publish(context.Background(), engine.Publication{Namespace: Namespace, Channel: ch, Payload: payload}); err != nil {
		srv.log.Warn("publish failed", "channel", ch, "err", err)
	}
}

// disconnect sends a DISCONNECT document with the reason, then closes.
func (ss *session) disconnect(k disconnectKind) {
	if !ss.closing.CompareAndSwap(false, true) {
		return
	}
	d := disconnects[k]
	ss.srv.m.disconnects[k].Inc()
	_ = ss.conn.Send(d.msg)
	ss.conn.Close(d.code, d.reason)
}

// throttled refuses an IDENTIFY from an address out of failure budget
// without checking it: close, no DISCONNECT document (throttle.go says why).
func (ss *session) throttled(src netip.Prefix, first bool) {
	if !ss.closing.CompareAndSwap(false, true) {
		return
	}
	srv := ss.srv
	srv.m.identifyRejected[rejectThrottled].Inc()
	if first {
		srv.log.Warn("damon: too many failed IDENTIFYs from one address; refusing its IDENTIFYs unchecked until its budget refills",
			"source", src.String(), "burst", srv.opts.IdentifyFailBurst, "refill_every", srv.opts.IdentifyFailInterval)
	}
	ss.conn.Close(closeThrottled, "IDENTIFY_THROTTLED")
}

// end closes without a DISCONNECT document (shutdown, app request).
func (ss *session) end(code uint16, reason string) {
	if ss.closing.CompareAndSwap(false, true) {
		ss.conn.Close(code, reason)
	}
}

// Terminate implements hub.Subscriber.
func (ss *session) Terminate() { ss.end(closeTerminated, "terminated") }

// Transport implements hub.Inspectable (the console's connection list).
func (ss *session) Transport() transport.Conn { return ss.conn }

// HandleClose implements transport.Handler: leave the hub and the registry.
func (ss *session) HandleClose(info transport.CloseInfo) {
	ss.closing.Store(true)
	if ss.subscribed {
		ss.leave(chanGlobal)
		ss.leave(chanDirectPrfx + ss.key)
	}
	if ss.group != "" {
		ss.leave(ss.group)
		ss.group = ""
	}
	ss.srv.opts.Hub.Disconnect(Namespace, ss.key)
	ss.srv.sessions.Remove(ss)
	ss.srv.obs.Open.Dec()
	if info.Err != nil {
		ss.srv.log.Debug("connection closed", "id", ss.key, "err", info.Err)
	}
}
