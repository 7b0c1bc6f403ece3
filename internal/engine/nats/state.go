package natsengine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// occState is this node's part of one channel's occupancy. The store holds
// each node's count; this node writes it at once when its count crosses
// 0<->1 (the only moments a cluster-wide transition can happen, so
// occupied/vacated stay exact) and otherwise marks it dirty for the next
// heartbeat's flush: a busy channel's subscribes cost no store writes.
type occState struct {
	count, stored, others int
	dirty                 bool
}

// Occupancy implements engine.Engine. Between crossings the total it
// returns is this node's exact count plus the others' last known counts.
func (e *Engine) Occupancy(ctx context.Context, ns, channel string, delta int) (int, error) {
	key := occKey(ns, channel)
	lk := e.stripe(key)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	id := e.nodeID
	st := e.occ[key]
	if st == nil {
		st = &occState{}
		e.occ[key] = st
	}
	old := st.count
	st.count = max(0, old+delta)
	n := st.count
	if (old == 0) == (n == 0) {
		if n == 0 {
			// A -1 with nothing counted here: a no-op; report the total.
			delete(e.occ, key)
			e.mu.Unlock()
			m, err := e.readCounts(ctx, key)
			return sum(m), err
		}
		st.dirty = true
		total := n + st.others
		e.mu.Unlock()
		return total, nil
	}
	e.mu.Unlock()
	total, err := e.writeCount(ctx, key, id, n)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		st.count = old
		return 0, err
	}
	st.stored, st.others, st.dirty = n, total-n, false
	if n == 0 && e.occ[key] == st {
		delete(e.occ, key)
	}
	return total, nil
}

// writeCount sets node id's count in key (0 removes it) and returns the
// channel's new total.
func (e *Engine) writeCount(ctx context.Context, key, id string, n int) (int, error) {
	var total int
	err := e.mutate(ctx, key, func(cur []byte, _ bool) ([]byte, bool, error) {
		m := map[string]int{}
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &m); err != nil {
				return nil, false, err
			}
		}
		if m[id] == n {
			total = sum(m)
			return nil, false, nil
		}
		if n == 0 {
			delete(m, id)
		} else {
			m[id] = n
		}
		total = sum(m)
		return encodeOrDelete(m, len(m))
	})
	return total, err
}

// flushCounts writes counts that changed without a crossing.
func (e *Engine) flushCounts() {
	e.mu.Lock()
	var dirty []string
	for k, st := range e.occ {
		if st.dirty {
			dirty = append(dirty, k)
		}
	}
	e.mu.Unlock()
	for _, key := range dirty {
		lk := e.stripe(key)
		lk.Lock()
		e.mu.Lock()
		st, id := e.occ[key], e.nodeID
		var n int
		if st != nil {
			n, st.dirty = st.count, false
		}
		e.mu.Unlock()
		if st != nil && n > 0 {
			if total, err := e.writeCount(e.ctx, key, id, n); err == nil {
				e.mu.Lock()
				st.stored, st.others = n, total-n
				e.mu.Unlock()
			} else {
				e.log.Warn("occupancy flush", "err", err)
			}
		}
		lk.Unlock()
	}
}

func (e *Engine) readCounts(ctx context.Context, key string) (map[string]int, error) {
	cur, _, found, err := e.read(ctx, key)
	m := map[string]int{}
	if err != nil || !found {
		return m, err
	}
	return m, json.Unmarshal(cur, &m)
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

// encodeOrDelete is a mutate result: the value, or a delete when empty.
func encodeOrDelete(v any, n int) ([]byte, bool, error) {
	if n == 0 {
		return nil, true, nil
	}
	b, err := json.Marshal(v)
	return b, err == nil, err
}

// Channels implements engine.Engine: one leader-side key listing per kind,
// then a read per channel (a REST query, not a hot path).
func (e *Engine) Channels(ctx context.Context, ns, prefix string) (map[string]engine.ChannelStats, error) {
	occ, err := e.keys(ctx, "o."+tok(ns)+".>")
	if err != nil {
		return nil, err
	}
	pres, err := e.keys(ctx, "p."+tok(ns)+".>")
	if err != nil {
		return nil, err
	}
	hasPres := map[string]bool{}
	for _, k := range pres {
		hasPres[k] = true
	}
	out := map[string]engine.ChannelStats{}
	for _, k := range occ {
		_, kns, name, ok := splitKey(k)
		if !ok || kns != ns || !strings.HasPrefix(name, prefix) {
			continue
		}
		st, ok, err := e.channel(ctx, ns, name, hasPres[presKey(ns, name)])
		if err != nil {
			return nil, err
		}
		if ok {
			out[name] = st
		}
	}
	return out, nil
}

// Channel implements engine.Engine.
func (e *Engine) Channel(ctx context.Context, ns, name string) (engine.ChannelStats, bool, error) {
	return e.channel(ctx, ns, name, true)
}

func (e *Engine) channel(ctx context.Context, ns, name string, presence bool) (engine.ChannelStats, bool, error) {
	m, err := e.readCounts(ctx, occKey(ns, name))
	if err != nil || sum(m) == 0 {
		return engine.ChannelStats{}, false, err
	}
	st := engine.ChannelStats{Subscriptions: sum(m)}
	if presence {
		members, err := e.readMembers(ctx, presKey(ns, name))
		if err != nil {
			return st, true, err
		}
		st.Users = len(members)
	}
	return st, true, nil
}

// presUser is one member of a presence channel in the store.
type presUser struct {
	Info  json.RawMessage `json:"i,omitempty"`
	Nodes []string        `json:"n"`
}

func decodeMembers(cur []byte) (map[string]*presUser, error) {
	m := map[string]*presUser{}
	if len(cur) == 0 {
		return m, nil
	}
	return m, json.Unmarshal(cur, &m)
}

func (e *Engine) readMembers(ctx context.Context, key string) (map[string]*presUser, error) {
	cur, _, _, err := e.read(ctx, key)
	if err != nil {
		return nil, err
	}
	return decodeMembers(cur)
}

// PresenceAdd implements engine.Presence. Only the user's first connection
// on this node writes; the limit is checked in the same CAS write.
func (e *Engine) PresenceAdd(ctx context.Context, ns, channel, connKey string, m engine.Member, limit int) (bool, error) {
	key := presKey(ns, channel)
	lk := e.stripe(key)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	id := e.nodeID
	users := e.pres[key]
	if conns := users[m.UserID]; len(conns) > 0 {
		conns[connKey] = struct{}{}
		e.mu.Unlock()
		return false, nil
	}
	e.mu.Unlock()
	var first bool
	err := e.mutate(ctx, key, func(cur []byte, _ bool) ([]byte, bool, error) {
		members, err := decodeMembers(cur)
		if err != nil {
			return nil, false, err
		}
		u := members[m.UserID]
		first = u == nil
		if first {
			if limit > 0 && len(members) >= limit {
				return nil, false, engine.ErrFull
			}
			u = &presUser{}
			members[m.UserID] = u
		}
		u.Info = m.Info // the newest connection's info wins
		if !slices.Contains(u.Nodes, id) {
			u.Nodes = append(u.Nodes, id)
		}
		return encodeOrDelete(members, len(members))
	})
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	if e.nodeID == id { // not fenced meanwhile
		if e.pres[key] == nil {
			e.pres[key] = map[string]map[string]struct{}{}
		}
		e.pres[key][m.UserID] = map[string]struct{}{connKey: {}}
	}
	e.mu.Unlock()
	return first, nil
}

// PresenceRemove implements engine.Presence.
func (e *Engine) PresenceRemove(ctx context.Context, ns, channel, connKey, userID string) (bool, error) {
	key := presKey(ns, channel)
	lk := e.stripe(key)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	id := e.nodeID
	conns := e.pres[key][userID]
	if _, ok := conns[connKey]; !ok {
		e.mu.Unlock()
		return false, nil
	}
	if len(conns) > 1 {
		delete(conns, connKey)
		e.mu.Unlock()
		return false, nil
	}
	e.mu.Unlock()
	last, err := e.dropMember(ctx, key, userID, id)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	if users := e.pres[key]; users != nil {
		delete(users, userID)
		if len(users) == 0 {
			delete(e.pres, key)
		}
	}
	e.mu.Unlock()
	return last, nil
}

// dropMember removes node id from userID's nodes (all users when userID is
// ""), returning whether a user left, and which.
func (e *Engine) dropMember(ctx context.Context, key, userID, id string) (bool, error) {
	gone, err := e.dropMembers(ctx, key, userID, id)
	return len(gone) > 0, err
}

func (e *Engine) dropMembers(ctx context.Context, key, userID, id string) ([]engine.Member, error) {
	var gone []engine.Member
	err := e.mutate(ctx, key, func(cur []byte, _ bool) ([]byte, bool, error) {
		gone = gone[:0]
		members, err := decodeMembers(cur)
		if err != nil {
			return nil, false, err
		}
		changed := false
		for uid, u := range members {
			if userID != "" && uid != userID {
				continue
			}
			if i := slices.Index(u.Nodes, id); i >= 0 {
				changed = true
				u.Nodes = slices.Delete(u.Nodes, i, i+1)
				if len(u.Nodes) == 0 {
					delete(members, uid)
					gone = append(gone, engine.Member{UserID: uid, Info: u.Info})
				}
			}
		}
		if !changed {
			return nil, false, nil
		}
		return encodeOrDelete(members, len(members))
	})
	return gone, err
}

// PresenceMembers implements engine.Presence.
func (e *Engine) PresenceMembers(ctx context.Context, ns, channel string) ([]engine.Member, error) {
	members, err := e.readMembers(ctx, presKey(ns, channel))
	if err != nil {
		return nil, err
	}
	out := make([]engine.Member, 0, len(members))
	for uid, u := range members {
		out = append(out, engine.Member{UserID: uid, Info: u.Info})
	}
	slices.SortFunc(out, func(a, b engine.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// PresenceCount implements engine.Presence.
func (e *Engine) PresenceCount(ctx context.Context, ns, channel string) (int, error) {
	members, err := e.readMembers(ctx, presKey(ns, channel))
	return len(members), err
}
