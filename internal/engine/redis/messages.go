package redisengine

import (
	"context"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Publish implements engine.Engine: local subscribers get p first (no
// round trip through Redis), then one PUBLISH reaches every other node
// subscribed to the channel; this node drops its own echo by origin id.
func (e *Engine) Publish(ctx context.Context, p engine.Publication) error {
	ch := e.k.data(p.Namespace, p.Channel)
	if e.sub.has(ch) {
		e.local.DeliverLocal(p)
	}
	msg := encodePublication(e.NodeID(), p)
	n, err := e.client.Do(ctx, e.client.B().Publish().Channel(ch).Message(rueidis.BinaryString(msg)).Build()).AsInt64()
	if err != nil {
		return err
	}
	e.metrics.Published(n)
	return nil
}

// Interest implements engine.Engine. With on, it returns once Redis
// confirmed the SUBSCRIBE, so a publication sent after it reaches this
// node. It never fails: while the connection is down the wish is recorded
// and the reconnect subscribes to it.
func (e *Engine) Interest(ctx context.Context, ns, ch string, on bool) error {
	e.sub.interest(ctx, e.k.data(ns, ch), on)
	return nil
}

// onMessage runs on the pub/sub connection's reader, in order per publisher.
func (e *Engine) onMessage(m rueidis.PubSubMessage) {
	if m.Channel == e.k.control() {
		e.onControl(m.Message)
		return
	}
	origin, p, err := decodePublication(m.Message)
	if err != nil {
		e.log.Warn("redis engine: dropping a malformed publication", "channel", m.Channel, "err", err)
		return
	}
	if e.isOwnID(origin) {
		return // delivered locally before it was published
	}
	e.local.DeliverLocal(p)
}

func (e *Engine) onControl(s string) {
	c, err := decodeControl(s)
	if err != nil {
		e.log.Warn("redis engine: dropping a malformed control message", "err", err)
		return
	}
	if e.isOwnID(c.origin) {
		return // the sender acted locally already
	}
	switch c.kind {
	case ctlTerminate:
		e.local.TerminateLocal(c.namespace, c.a)
	case ctlKick:
		if e.isOwnID(c.target) { // an older id too: fenced, its connection may not be closed yet
			e.local.KickLocal(c.namespace, c.a, c.b)
		}
	}
}

func (e *Engine) sendControl(ctx context.Context, c control) error {
	c.origin = e.NodeID()
	msg := encodeControl(c)
	return e.do(ctx, "control", e.client.B().Publish().Channel(e.k.control()).Message(rueidis.BinaryString(msg)).Build()).Error()
}

// TerminateUser implements engine.Users: this node ends the user's
// connections at once, the others when the control message reaches them.
func (e *Engine) TerminateUser(ctx context.Context, ns, userID string) error {
	e.local.TerminateLocal(ns, userID)
	return e.sendControl(ctx, control{kind: ctlTerminate, namespace: ns, a: userID})
}
