package natsengine

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// interestBarrier returns once every other live node has answered a ping
// sent after our subscription. A flush only proves that our own server
// has the subscription; the other servers learn it over their routes
// ~1-3 ms later (longer on a loaded machine), and a publish there in
// between would be lost. The ping travels the same route connection
// after the subscription's announcement, so each reply proves that the
// replying node's server routes the channel to us.
//
// Bounded twice: by barrierTimeout, and by waiting only for the peers
// whose beat this node saw within barrierFresh heartbeats. A dead node
// that is not reaped yet never answers; without the second bound, every
// first subscribe on this node would wait out the timeout until it is.
func (e *Engine) interestBarrier(ctx context.Context) {
	want := e.freshPeers()
	if len(want) == 0 {
		return
	}
	inbox := e.data.NewRespInbox()
	sub, err := e.data.SubscribeSync(inbox)
	if err != nil {
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.data.PublishRequest(e.n.ping, inbox, nil); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, barrierTimeout)
	defer cancel()
	anonymous := 0 // replies from nodes that do not name themselves (older versions)
	for len(want) > anonymous {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			e.log.Warn("interest barrier incomplete: a publish on these nodes right now may not reach this node",
				"waiting_for", len(want)-anonymous, "err", err)
			return
		}
		if len(m.Data) == 0 {
			anonymous++
			continue
		}
		delete(want, string(m.Data))
	}
}

// freshPeers is the set of other nodes whose beat this node saw within
// the last barrierFresh heartbeats.
func (e *Engine) freshPeers() map[string]struct{} {
	me := e.NodeID()
	now := time.Now()
	e.hb.mu.Lock()
	defer e.hb.mu.Unlock()
	out := make(map[string]struct{}, len(e.hb.seen))
	for id, s := range e.hb.seen {
		if id != me && now.Sub(s.at) <= barrierFresh*e.o.Heartbeat {
			out[id] = struct{}{}
		}
	}
	return out
}

const (
	// barrierTimeout bounds interestBarrier when a fresh peer does not
	// answer. On a quiet machine the whole flush and barrier of a first
	// subscribe took 3-7 ms at most (TestInterestReachesEveryServer-
	// BeforeReturning logs it); the bound is for a loaded machine, where
	// giving up early risks losing a publish.
	barrierTimeout = time.Second
	// interestFlushTimeout bounds the flush and barrier of a first
	// subscribe when the caller's context has no deadline.
	interestFlushTimeout = 5 * time.Second
	// barrierFresh: a peer silent for more heartbeats than this is not
	// waited for (it is likely dead; the reaper takes NodeTimeout).
	barrierFresh = 3
)

// onPing answers a peer's interestBarrier with this node's id.
func (e *Engine) onPing(m *nats.Msg) { _ = m.Respond([]byte(e.NodeID())) }
