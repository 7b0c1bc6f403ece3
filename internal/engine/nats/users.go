package natsengine

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// UserOnline implements engine.Users: only the user's first connection on
// this node writes (adds this node to u.<ns>.<user>).
func (e *Engine) UserOnline(ctx context.Context, ns, userID, connKey string) (bool, error) {
	key := userKey(ns, userID)
	lk := e.stripe(key)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	id := e.nodeID
	if conns := e.users[key]; len(conns) > 0 {
		conns[connKey] = struct{}{}
		e.mu.Unlock()
		return false, nil
	}
	e.mu.Unlock()
	var first bool
	err := e.mutate(ctx, key, func(cur []byte, _ bool) ([]byte, bool, error) {
		nodes, err := decodeNodes(cur)
		if err != nil {
			return nil, false, err
		}
		first = len(nodes) == 0
		if slices.Contains(nodes, id) {
			return nil, false, nil
		}
		return encodeOrDelete(append(nodes, id), 1)
	})
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	if e.nodeID == id {
		e.users[key] = map[string]struct{}{connKey: {}}
	}
	e.mu.Unlock()
	return first, nil
}

// UserOffline implements engine.Users.
func (e *Engine) UserOffline(ctx context.Context, ns, userID, connKey string) (bool, error) {
	key := userKey(ns, userID)
	lk := e.stripe(key)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	id := e.nodeID
	conns := e.users[key]
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
	last, err := e.dropUserNode(ctx, key, id)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	delete(e.users, key)
	e.mu.Unlock()
	return last, nil
}

// dropUserNode removes node id from a user's nodes and reports whether
// that took the user offline.
func (e *Engine) dropUserNode(ctx context.Context, key, id string) (bool, error) {
	var last bool
	err := e.mutate(ctx, key, func(cur []byte, _ bool) ([]byte, bool, error) {
		last = false
		nodes, err := decodeNodes(cur)
		if err != nil {
			return nil, false, err
		}
		i := slices.Index(nodes, id)
		if i < 0 {
			return nil, false, nil
		}
		nodes = slices.Delete(nodes, i, i+1)
		last = len(nodes) == 0
		return encodeOrDelete(nodes, len(nodes))
	})
	return last, err
}

func decodeNodes(cur []byte) ([]string, error) {
	var nodes []string
	if len(cur) == 0 {
		return nil, nil
	}
	return nodes, json.Unmarshal(cur, &nodes)
}

// OnlineUsers implements engine.Users: one leader read per id, up to
// readFanout at a time, answered in the order of ids.
func (e *Engine) OnlineUsers(ctx context.Context, ns string, ids []string) ([]string, error) {
	online := make([]bool, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, readFanout)
	var wg sync.WaitGroup
	for i, uid := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _, online[i], errs[i] = e.read(ctx, userKey(ns, uid))
		})
	}
	wg.Wait()
	var out []string
	for i, uid := range ids {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if online[i] {
			out = append(out, uid)
		}
	}
	return out, nil
}

// readFanout bounds concurrent store reads of one query.
const readFanout = 16

// claim is the owner of a claim key: a connection and the node holding it.
type claim struct {
	Conn string `json:"c"`
	Node string `json:"n"`
}

// Claim implements engine.Claims: one CAS write swaps the owner, so
// concurrent claims are serialized by the store; the previous owner is
// kicked here or on its node (sb.node.<id>).
func (e *Engine) Claim(ctx context.Context, ns, key, connKey string) (string, error) {
	id := e.NodeID()
	var prev claim
	err := e.mutate(ctx, claimKey(ns, key), func(cur []byte, _ bool) ([]byte, bool, error) {
		prev = claim{}
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &prev); err != nil {
				return nil, false, err
			}
		}
		if prev == (claim{Conn: connKey, Node: id}) {
			return nil, false, nil
		}
		return encodeOrDelete(claim{Conn: connKey, Node: id}, 1)
	})
	if err != nil || prev.Conn == "" || prev.Conn == connKey {
		return "", err
	}
	if prev.Node == id {
		e.local.KickLocal(ns, prev.Conn, key)
		return prev.Conn, nil
	}
	env := envelope{Kind: kindKick, Origin: id, Namespace: ns, Channel: key, Conn: prev.Conn}
	if err := e.data.Publish(e.n.nodeSubject(prev.Node), appendEnvelope(nil, &env)); err != nil {
		e.log.Warn("kick not sent", "node", prev.Node, "err", err)
	} else {
		e.obs.BrokerPublish()
	}
	return prev.Conn, nil
}

// Release implements engine.Claims.
func (e *Engine) Release(ctx context.Context, ns, key, connKey string) (bool, error) {
	var owned bool
	err := e.mutate(ctx, claimKey(ns, key), func(cur []byte, found bool) ([]byte, bool, error) {
		var c claim
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &c); err != nil {
				return nil, false, err
			}
		}
		owned = found && c.Conn == connKey
		return nil, owned, nil
	})
	return owned, err
}

var _ engine.Claims = (*Engine)(nil)
