package redisengine

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// lockTTL bounds a reap: a reaper that dies mid-way leaves the node to the
// next reaper after this (the node stays "known" until its indexes are
// empty, so it is found again).
const lockTTL = 30 * time.Second

// register adds this node's record under its current id.
func (e *Engine) register(ctx context.Context) error {
	n, err := e.exec(ctx, "register", e.s.register, []string{e.k.nodes(), e.k.known()}, []string{e.NodeID()}).AsInt64()
	if err != nil {
		return err
	}
	e.metrics.Nodes(int(n))
	e.hbOK.Store(true)
	return nil
}

// heartbeatLoop refreshes the record and fences when it is gone. It also
// keeps healthySince: when this node's heartbeats started succeeding
// without a break (0 while they fail).
func (e *Engine) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(e.o.Heartbeat)
	defer t.Stop()
	e.healthySince.Store(time.Now().UnixNano()) // registration succeeded just before
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.checkHB:
		}
		if e.pauseHB.Load() {
			e.healthySince.Store(0)
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, e.o.probeTimeout())
		n, err := e.exec(hctx, "heartbeat", e.s.heartbeat, []string{e.k.nodes()}, []string{e.NodeID()}).AsInt64()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if e.hbOK.Swap(false) {
				e.log.Warn("redis engine: heartbeat failed; not ready", "node", e.NodeID(), "err", err)
			}
			e.healthySince.Store(0)
			continue
		case n < 0:
			e.healthySince.Store(0)
			e.fence(ctx)
			continue
		}
		if !e.hbOK.Swap(true) {
			e.log.Info("redis engine: heartbeat succeeded; ready", "node", e.NodeID())
		}
		e.metrics.Nodes(int(n))
		e.healthySince.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// reapLoop looks for dead nodes every heartbeat, but only while this node's
// own heartbeats have succeeded for a whole NodeTimeout: after a store
// outage every record is stale, and a node that just got through must not
// reap the others before they had the same chance. It runs apart from the
// heartbeats so that a long reap never makes this node look dead.
func (e *Engine) reapLoop(ctx context.Context) {
	t := time.NewTicker(e.o.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if e.hbOK.Load() {
			e.retryHeld(ctx)
		}
		since := e.healthySince.Load()
		if since != 0 && time.Since(time.Unix(0, since)) >= e.o.NodeTimeout {
			e.reapDead(ctx)
		}
	}
}

// fence handles a missing record: the cluster dropped this node (it was
// reaped while paused or cut off, or Redis lost its data). Its old state
// is gone or being reaped, so it forgets its local counts, rejoins under a
// new id, and tells the hub to close every connection with a reconnect
// code; the clients come back and rebuild their state.
func (e *Engine) fence(ctx context.Context) {
	old := e.NodeID()
	e.hbOK.Store(false)
	e.presence.reset()
	e.users.reset()
	e.setID(newNodeID(e.o.NodeName))
	e.log.Warn("redis engine: node was dropped from the cluster; fencing and rejoining", "old", old, "new", e.NodeID())
	e.metrics.Fenced()
	// Rejoin before telling the hub, so that the connections it accepts
	// once it closed the old ones can write under the new id.
	if err := e.register(ctx); err != nil {
		e.log.Warn("redis engine: rejoin failed; retrying", "node", e.NodeID(), "err", err)
		// The next heartbeat finds no record and fences again under
		// another new id: harmless, since this id owns nothing yet.
	}
	e.local.Fenced()
}

// reapDead reaps every node whose record went silent past NodeTimeout.
func (e *Engine) reapDead(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, e.o.probeTimeout())
	ids, err := e.exec(sctx, "reap_scan", e.s.reapScan, []string{e.k.nodes(), e.k.known()},
		[]string{strconv.FormatInt(e.o.NodeTimeout.Milliseconds(), 10)}).AsStrSlice()
	cancel()
	if err != nil {
		e.log.Warn("redis engine: scanning for dead nodes failed", "err", err)
		return
	}
	for _, id := range ids {
		if id == e.NodeID() {
			continue // our own record is stale only if heartbeats failed: they did not
		}
		if _, err := e.reap(ctx, id, false); err != nil && ctx.Err() == nil {
			e.log.Warn("redis engine: reaping failed; will retry", "dead", id, "err", err)
		}
	}
}

// reap removes a departed node's state with the same idempotent scripts
// that wrote it, and hands the transitions it causes to this node's hub.
// self is a graceful leave: the record goes without waiting for a timeout.
func (e *Engine) reap(ctx context.Context, id string, self bool) (transitions int, err error) {
	me := e.NodeID()
	mode := strconv.FormatInt(e.o.NodeTimeout.Milliseconds(), 10)
	if self {
		mode = "force"
	}
	lock := e.k.reapLock(id)
	got, err := e.exec(ctx, "reap_begin", e.s.reapBegin, []string{lock, e.k.nodes()},
		[]string{id, me, strconv.FormatInt(lockTTL.Milliseconds(), 10), mode}).AsInt64()
	if err != nil || got == 0 {
		return 0, err
	}
	if !self {
		e.log.Info("redis engine: reaping a silent node", "dead", id, "reaper", me)
	}
	for _, kind := range indexKinds {
		n, err := e.drainIndex(ctx, id, kind)
		transitions += n
		if err != nil {
			return transitions, err
		}
	}
	idx := make([]string, 0, 2+len(indexKinds))
	idx = append(idx, lock, e.k.known())
	for _, kind := range indexKinds {
		idx = append(idx, e.k.index(id, kind))
	}
	if _, err := e.exec(ctx, "reap_end", e.s.reapEnd, idx, []string{id, me}).AsInt64(); err != nil {
		return transitions, err
	}
	e.metrics.Reaped(id, transitions)
	return transitions, nil
}

// drainIndex undoes one kind of a node's contributions, a batch at a time;
// every script removes its index entry, so the loop ends.
func (e *Engine) drainIndex(ctx context.Context, id, kind string) (int, error) {
	idx := e.k.index(id, kind)
	transitions := 0
	for ctx.Err() == nil {
		members, err := e.do(ctx, "reap_read", e.client.B().Srandmember().Key(idx).Count(256).Build()).AsStrSlice()
		if err != nil {
			return transitions, err
		}
		if len(members) == 0 {
			return transitions, nil
		}
		execs, orphans, bad := e.reapExecs(id, kind, idx, members)
		if len(bad) > 0 {
			// Unreadable entries cannot be undone; drop them so the loop ends.
			e.log.Warn("redis engine: dropping malformed index entries", "index", idx, "count", len(bad))
			if err := e.do(ctx, "reap_drop", e.client.B().Srem().Key(idx).Member(bad...).Build()).Error(); err != nil {
				return transitions, err
			}
		}
		if len(execs) == 0 {
			continue
		}
		results := e.scriptFor(kind).ExecMulti(ctx, e.client, execs...)
		for i, res := range results {
			if err := res.Error(); err != nil {
				e.metrics.StoreOp("reap_"+kind, err)
				return transitions, err
			}
			e.metrics.StoreOp("reap_"+kind, nil)
			if o, ok := reapTransition(kind, res, orphans[i]); ok {
				transitions++
				e.local.Orphaned(o)
			}
		}
	}
	return transitions, ctx.Err()
}

func (e *Engine) scriptFor(kind string) *rueidis.Lua {
	switch kind {
	case idxOccupancy:
		return e.s.occupancy
	case idxPresence:
		return e.s.presenceRemove
	case idxUsers:
		return e.s.userOffline
	default:
		return e.s.release
	}
}

// reapExecs builds the undo script calls for index members, and the orphan
// each would produce if its script reports a transition.
func (e *Engine) reapExecs(id, kind, idx string, members []string) ([]rueidis.LuaExec, []engine.Orphan, []string) {
	var execs []rueidis.LuaExec
	var orphans []engine.Orphan
	var bad []string
	for _, m := range members {
		switch kind {
		case idxOccupancy:
			p, err := splitMember(m, 2)
			if err != nil {
				bad = append(bad, m)
				continue
			}
			ns, ch := p[0], p[1]
			execs = append(execs, rueidis.LuaExec{
				Keys: []string{e.k.occupancy(ns, ch), e.k.occupied(ns), e.k.nodes(), idx},
				Args: []string{id, "all", ch, m}})
			orphans = append(orphans, engine.Orphan{Kind: engine.OrphanVacated, Namespace: ns, Channel: ch})
		case idxPresence:
			p, err := splitMember(m, 3)
			if err != nil {
				bad = append(bad, m)
				continue
			}
			ns, ch, user := p[0], p[1], p[2]
			execs = append(execs, rueidis.LuaExec{
				Keys: []string{e.k.presence(ns, ch), e.k.presenceNodes(ns, ch), e.k.presenceCount(ns, ch), idx},
				Args: []string{id, user, m}})
			orphans = append(orphans, engine.Orphan{Kind: engine.OrphanMemberRemoved, Namespace: ns, Channel: ch, Member: engine.Member{UserID: user}})
		case idxUsers:
			p, err := splitMember(m, 2)
			if err != nil {
				bad = append(bad, m)
				continue
			}
			ns, user := p[0], p[1]
			execs = append(execs, rueidis.LuaExec{Keys: []string{e.k.user(ns, user), idx}, Args: []string{id, m}})
			orphans = append(orphans, engine.Orphan{Kind: engine.OrphanUserOffline, Namespace: ns, Member: engine.Member{UserID: user}})
		default:
			p, err := splitMember(m, 2)
			if err != nil {
				bad = append(bad, m)
				continue
			}
			execs = append(execs, rueidis.LuaExec{Keys: []string{e.k.claim(p[0], p[1]), idx}, Args: []string{id, "", m}})
			orphans = append(orphans, engine.Orphan{}) // a released claim is no transition
		}
	}
	return execs, orphans, bad
}

// reapTransition reads a reap script's reply: did it decide a transition?
func reapTransition(kind string, res rueidis.RedisResult, o engine.Orphan) (engine.Orphan, bool) {
	switch kind {
	case idxOccupancy:
		v, err := res.AsIntSlice()
		return o, err == nil && len(v) == 2 && v[0] == 0 && v[1] < 0
	case idxPresence, idxUsers:
		v, err := res.AsInt64()
		return o, err == nil && v == 1
	}
	return o, false
}
