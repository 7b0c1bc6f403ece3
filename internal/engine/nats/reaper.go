package natsengine

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Liveness. Every node rewrites its record n.<id> each Heartbeat (a CAS
// on its own revision) and watches everyone's records. A node's last
// change is timed on the watcher's clock, never by comparing timestamps
// written by other machines, so clock skew cannot kill a node. A node
// silent for NodeTimeout is reaped by one healthy node: the one that
// wins kv.Create of r.<id>.
type heartbeatState struct {
	mu       sync.Mutex
	seen     map[string]nodeSeen // node id -> its record's last change
	selfSeen time.Time           // when the watcher last showed our own beat
	okSince  time.Time           // start of our unbroken run of good beats
	lastOK   time.Time
	// lastSweep: when this node last tried to sweep for stray node ids.
	lastSweep time.Time
}

// nodeSeen is when the watcher saw a node record's revision change.
type nodeSeen struct {
	at  time.Time
	rev uint64
}

type nodeRecord struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Started int64  `json:"started"` // unix ms, for operators
	Beat    uint64 `json:"beat"`
}

// register creates this node's record and its kick subject. A fresh
// record starts a fresh window: the node reaps no one until its own beats
// have succeeded for NodeTimeout.
func (e *Engine) register(ctx context.Context) error {
	id := e.NodeID()
	rec, _ := json.Marshal(nodeRecord{ID: id, Name: e.o.NodeName, Started: time.Now().UnixMilli()})
	rev, err := e.kv.Create(ctx, nodeKey(id), rec)
	e.obs.StoreOp("create", false, err)
	if isConflict(err) {
		// An earlier attempt timed out on our side but landed.
		cur, curRev, found, rerr := e.read(ctx, nodeKey(id))
		var r nodeRecord
		if rerr == nil && found && json.Unmarshal(cur, &r) == nil && r.ID == id {
			rev, err = curRev, nil
		}
	}
	if err != nil {
		return err
	}
	sub, err := e.data.Subscribe(e.n.nodeSubject(id), e.onControl)
	if err != nil {
		return err
	}
	_ = e.data.FlushWithContext(ctx)
	e.mu.Lock()
	old := e.nodeSub
	e.nodeSub, e.nodeRev = sub, rev
	e.mu.Unlock()
	if old != nil {
		_ = old.Unsubscribe()
	}
	now := time.Now()
	e.hb.mu.Lock()
	e.hb.okSince, e.hb.lastOK = now, now
	e.hb.mu.Unlock()
	return nil
}

func (e *Engine) heartbeatLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.o.Heartbeat)
	defer t.Stop()
	var beat uint64
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		if e.pause.Load() {
			continue // as if the process were stopped: no beats, no reaping
		}
		beat++
		e.beat(beat)
		// Flushing and reaping may take many store round trips; beats
		// must not wait for them, or a busy reaper would look dead.
		if e.busy.CompareAndSwap(false, true) {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer e.busy.Store(false)
				e.flushCounts()
				e.reapDead()
			}()
		}
	}
}

// beat rewrites our record. A lost CAS means someone else touched it:
// if the record is gone we were reaped, and fence; if it is still ours, a
// beat whose reply was lost did land, and we adopt its revision.
func (e *Engine) beat(n uint64) {
	e.mu.Lock()
	id, rev := e.nodeID, e.nodeRev
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, e.o.Heartbeat)
	defer cancel()
	rec, _ := json.Marshal(nodeRecord{ID: id, Name: e.o.NodeName, Beat: n})
	newRev, err := e.kv.Update(ctx, nodeKey(id), rec, rev)
	e.obs.StoreOp("update", isConflict(err), nil)
	if err == nil {
		e.mu.Lock()
		if e.nodeID == id {
			e.nodeRev = newRev
		}
		e.mu.Unlock()
		now := time.Now()
		e.hb.mu.Lock()
		if e.hb.okSince.IsZero() {
			e.hb.okSince = now
		}
		e.hb.lastOK = now
		e.hb.mu.Unlock()
		return
	}
	e.hb.mu.Lock()
	e.hb.okSince = time.Time{}
	e.hb.mu.Unlock()
	if !isConflict(err) {
		e.log.Warn("heartbeat failed", "err", err)
		if e.storeLost() {
			e.fence(id)
		}
		return
	}
	cur, curRev, found, rerr := e.read(ctx, nodeKey(id))
	if rerr != nil {
		return
	}
	var r nodeRecord
	if found && json.Unmarshal(cur, &r) == nil && r.ID == id {
		e.mu.Lock()
		e.nodeRev = curRev
		e.mu.Unlock()
		return
	}
	e.fence(id)
}

// fence: the cluster reaped us (we were paused or cut off). Everything we
// held is gone from the store; our bookkeeping is dropped, never written
// back, and we rejoin under a new id. The hub closes every connection.
func (e *Engine) fence(old string) {
	id := newNodeID()
	e.log.Warn("fenced: this node was reaped; rejoining", "old_node_id", old, "node_id", id)
	e.resetLocal(id)
	for e.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		err := e.register(ctx)
		cancel()
		if err == nil {
			break
		}
		e.log.Warn("rejoin failed", "err", err)
		time.Sleep(e.o.Heartbeat)
	}
	e.local.Fenced()
}

// watchNodes keeps hb.seen from the node records; ready is closed once
// the existing records are loaded. A watcher can go quiet without an
// error (its consumer lived on a stream leader that died and is being
// recreated): when our own successful beats stop showing up in it, it is
// replaced.
func (e *Engine) watchNodes(ready chan struct{}) {
	defer e.wg.Done()
	once := sync.Once{}
	check := time.NewTicker(e.o.Heartbeat)
	defer check.Stop()
	for e.ctx.Err() == nil {
		w, err := e.kv.Watch(e.ctx, "n.*")
		if err != nil {
			e.log.Warn("node watch", "err", err)
			time.Sleep(e.o.Heartbeat)
			continue
		}
		started := time.Now()
	watching:
		for {
			select {
			case ent, ok := <-w.Updates():
				if !ok {
					break watching
				}
				if ent == nil {
					once.Do(func() { close(ready) })
					continue
				}
				e.noteNode(ent)
			case <-check.C:
				if e.watcherBlind(started) {
					e.log.Warn("node watch shows none of our beats; restarting it")
					break watching
				}
			}
		}
		_ = w.Stop()
	}
}

// watcherBlind: our beats succeed but the watcher has shown none of them
// for three heartbeats.
func (e *Engine) watcherBlind(started time.Time) bool {
	now := time.Now()
	e.hb.mu.Lock()
	defer e.hb.mu.Unlock()
	last := e.hb.selfSeen
	if started.After(last) {
		last = started
	}
	return now.Sub(last) > 3*e.o.Heartbeat && now.Sub(e.hb.lastOK) < 2*e.o.Heartbeat && e.hb.lastOK.After(last)
}

// noteNode records a node record's change. A record replayed by a new
// watcher at an unchanged revision keeps its old time: it has been silent
// all along.
func (e *Engine) noteNode(ent jetstream.KeyValueEntry) {
	id := strings.TrimPrefix(ent.Key(), "n.")
	me := e.NodeID()
	now := time.Now()
	e.hb.mu.Lock()
	defer e.hb.mu.Unlock()
	if e.hb.seen == nil {
		e.hb.seen = map[string]nodeSeen{}
	}
	if ent.Operation() != jetstream.KeyValuePut {
		delete(e.hb.seen, id)
	} else if old, ok := e.hb.seen[id]; !ok || old.rev != ent.Revision() {
		e.hb.seen[id] = nodeSeen{at: now, rev: ent.Revision()}
		if id == me {
			e.hb.selfSeen = now
		}
	}
	e.obs.Nodes(len(e.hb.seen))
}

// reapDead reaps every node silent past NodeTimeout, if this node is fit
// to judge: its own beats succeeded for the whole window and its watcher
// showed its own latest beats (so silence is not our own blindness).
func (e *Engine) reapDead() {
	now := time.Now()
	me := e.NodeID()
	var dead []string
	e.hb.mu.Lock()
	fit := !e.hb.okSince.IsZero() && now.Sub(e.hb.okSince) >= e.o.NodeTimeout &&
		now.Sub(e.hb.selfSeen) < e.o.NodeTimeout/2
	if fit {
		for id, t := range e.hb.seen {
			if id != me && now.Sub(t.at) > e.o.NodeTimeout {
				dead = append(dead, id)
			}
		}
	}
	sweep := fit && now.Sub(e.hb.lastSweep) >= sweepEvery*e.o.NodeTimeout
	if sweep {
		e.hb.lastSweep = now
	}
	e.hb.mu.Unlock()
	for _, id := range dead {
		e.tryReap(id)
	}
	if sweep {
		e.sweepStrays()
	}
}

// sweepEvery: every this many NodeTimeouts one node (the winner of the
// r.=sweep lock) scans the whole state for node ids that have no record.
const sweepEvery = 6

// sweepStrays reaps node ids found only in stored data: a write from a
// node that was reaped while it was paused, landing after the reaper's
// scan, or a reaper that died half-way. The record is checked at the
// leader after the data scan, and nodes create their record before any
// write, so a node that is joining right now is never taken for a stray.
func (e *Engine) sweepStrays() {
	ctx, cancel := context.WithTimeout(e.ctx, 4*e.o.NodeTimeout)
	defer cancel()
	if _, err := e.kv.Create(ctx, reapKey("="), []byte(e.NodeID()), jetstream.KeyTTL(sweepEvery*e.o.NodeTimeout/2)); err != nil {
		return
	}
	ids := map[string]bool{}
	for _, kind := range []string{"o", "p", "u", "c"} {
		keys, err := e.keys(ctx, kind+".>")
		if err != nil {
			return
		}
		for _, k := range keys {
			cur, _, found, err := e.read(ctx, k)
			if err != nil || !found {
				continue
			}
			for _, id := range nodesIn(kind, cur) {
				ids[id] = true
			}
		}
	}
	for id := range ids {
		if _, _, found, err := e.read(ctx, nodeKey(id)); err == nil && !found {
			e.tryReap(id)
		}
	}
}

// nodesIn lists the node ids a state value mentions.
func nodesIn(kind string, v []byte) []string {
	var out []string
	switch kind {
	case "o":
		var m map[string]int
		_ = json.Unmarshal(v, &m)
		for id := range m {
			out = append(out, id)
		}
	case "p":
		m, _ := decodeMembers(v)
		for _, u := range m {
			out = append(out, u.Nodes...)
		}
	case "u":
		out, _ = decodeNodes(v)
	case "c":
		var c claim
		if json.Unmarshal(v, &c) == nil && c.Node != "" {
			out = append(out, c.Node)
		}
	}
	return out
}

// tryReap reaps id if this node wins its reap lock. The lock expires on
// its own, so a reaper that dies mid-way leaves the node to the next one.
func (e *Engine) tryReap(id string) {
	ctx, cancel := context.WithTimeout(e.ctx, 4*e.o.NodeTimeout)
	defer cancel()
	_, err := e.kv.Create(ctx, reapKey(id), []byte(e.NodeID()), jetstream.KeyTTL(3*e.o.NodeTimeout))
	e.obs.StoreOp("create", isConflict(err), nil)
	if err != nil {
		if !isConflict(err) {
			e.log.Warn("reap lock", "node_id", id, "err", err)
		}
		return
	}
	e.log.Info("reaping a silent node", "node_id", id, "timeout", e.o.NodeTimeout)
	n := e.reapNode(ctx, id, false)
	if err := e.kv.Delete(ctx, nodeKey(id)); err != nil {
		e.log.Warn("reaped node record not removed", "node_id", id, "err", err)
	}
	e.obs.Reaped(n)
}

// reapNode removes node id's contributions from every state key with the
// same CAS writes the node itself would have made, and hands each
// resulting transition to this node's hub. Returns how many.
func (e *Engine) reapNode(ctx context.Context, id string, self bool) int {
	orphans := 0
	emit := func(o engine.Orphan) {
		orphans++
		e.local.Orphaned(o)
	}
	for _, kind := range []string{"o", "p", "u", "c"} {
		keys, err := e.keys(ctx, kind+".>")
		if err != nil {
			e.log.Warn("reap scan", "node_id", id, "err", err)
			continue
		}
		for _, k := range keys {
			_, ns, name, ok := splitKey(k)
			if !ok {
				continue
			}
			if err := e.reapKey(ctx, kind, k, ns, name, id, emit); err != nil {
				e.log.Warn("reap write", "node_id", id, "key", k, "err", err)
			}
		}
	}
	if self {
		e.resetLocal(id)
	}
	return orphans
}

func (e *Engine) reapKey(ctx context.Context, kind, k, ns, name, id string, emit func(engine.Orphan)) error {
	switch kind {
	case "o":
		m, err := e.readCounts(ctx, k)
		if err != nil || m[id] == 0 {
			return err
		}
		total, err := e.writeCount(ctx, k, id, 0)
		if err == nil && total == 0 {
			emit(engine.Orphan{Kind: engine.OrphanVacated, Namespace: ns, Channel: name})
		}
		return err
	case "p":
		gone, err := e.dropMembers(ctx, k, "", id)
		for _, m := range gone {
			emit(engine.Orphan{Kind: engine.OrphanMemberRemoved, Namespace: ns, Channel: name, Member: m})
		}
		return err
	case "u":
		last, err := e.dropUserNode(ctx, k, id)
		if last {
			emit(engine.Orphan{Kind: engine.OrphanUserOffline, Namespace: ns, Member: engine.Member{UserID: name}})
		}
		return err
	case "c":
		return e.mutate(ctx, k, func(cur []byte, _ bool) ([]byte, bool, error) {
			var c claim
			if len(cur) == 0 || json.Unmarshal(cur, &c) != nil || c.Node != id {
				return nil, false, nil
			}
			return nil, true, nil
		})
	}
	return nil
}
