package redisengine

import "sync"

// refTable counts this node's own connections per presence member or
// signed-in user, so the store is written only when the node's count
// crosses 0<->1 (a user with five tabs on one node is one store write).
//
// Each key has its own lock, held across the store call: the writes for
// one key from one node are serialized, so an add and a remove can never
// reach Redis in the opposite order, while different keys proceed in
// parallel.
type refTable struct {
	mu      sync.Mutex
	m       map[refKey]*refEntry
	pending map[refKey]struct{} // entries with held set, for the retry loop
}

type refKey struct{ ns, name, user string }

type refEntry struct {
	mu      sync.Mutex
	conns   map[string]struct{}
	holders int // callers holding or waiting for mu (guarded by the table's mu)
	// held: the store may still count this node for the key although no
	// local connection is left (a remove failed, or an add's outcome is
	// unknown); the retry loop removes it.
	held bool
}

func newRefTable() *refTable {
	return &refTable{m: map[refKey]*refEntry{}, pending: map[refKey]struct{}{}}
}

// acquire returns k's entry, locked.
func (t *refTable) acquire(k refKey) *refEntry {
	t.mu.Lock()
	e := t.m[k]
	if e == nil {
		e = &refEntry{conns: map[string]struct{}{}}
		t.m[k] = e
	}
	e.holders++
	t.mu.Unlock()
	e.mu.Lock()
	return e
}

// release unlocks e and forgets it when nobody uses it.
func (t *refTable) release(k refKey, e *refEntry) {
	empty, held := len(e.conns) == 0, e.held
	e.mu.Unlock()
	t.mu.Lock()
	e.holders--
	if held && t.m[k] == e {
		t.pending[k] = struct{}{}
	}
	if e.holders == 0 && empty && !held && t.m[k] == e {
		delete(t.m, k)
	}
	t.mu.Unlock()
}

// reset forgets every count: after fencing, the store no longer holds this
// node's state under any id, so the connections the hub is closing must
// not write again. Callers holding an old entry finish on it unseen.
func (t *refTable) reset() {
	t.mu.Lock()
	t.m = map[refKey]*refEntry{}
	t.pending = map[refKey]struct{}{}
	t.mu.Unlock()
}

// takePending returns the keys to retry and forgets them (a retry that
// fails marks its key again).
func (t *refTable) takePending() []refKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]refKey, 0, len(t.pending))
	for k := range t.pending {
		out = append(out, k)
	}
	clear(t.pending)
	return out
}
