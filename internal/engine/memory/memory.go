// Package memory is the single-node engine: every publication is delivered
// straight to the local hub, and presence, occupancy, users and cache live
// in this process's memory.
package memory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

type key struct{ ns, name string }

type presenceUser struct {
	info  []byte
	conns map[string]struct{}
}

type cacheEntry struct {
	payload []byte
	expires time.Time
}

// Engine is the in-memory engine. Each concern has its own lock so that,
// say, a presence join never waits for a cache write.
type Engine struct {
	local engine.Local
	now   func() time.Time

	occMu     sync.Mutex
	occupancy map[key]int

	presMu   sync.Mutex
	presence map[key]map[string]*presenceUser

	usersMu sync.Mutex
	users   map[key]map[string]struct{} // (ns, user id) -> conn keys

	cacheMu sync.Mutex
	cache   map[key]cacheEntry

	claimMu sync.Mutex
	claims  map[key]string // (ns, claim key) -> owning conn key

	kvMu sync.Mutex
	kv   map[key]kvEntry
}

var _ engine.Engine = (*Engine)(nil)

// New returns an empty engine.
func New() *Engine {
	return &Engine{
		now:       time.Now,
		occupancy: map[key]int{},
		presence:  map[key]map[string]*presenceUser{},
		users:     map[key]map[string]struct{}{},
		cache:     map[key]cacheEntry{},
		claims:    map[key]string{},
		kv:        map[key]kvEntry{},
	}
}

// SetClock replaces the engine's clock (cache expiry); for tests.
func (e *Engine) SetClock(now func() time.Time) { e.now = now }

// NodeID implements engine.Engine: one node is the whole cluster.
func (e *Engine) NodeID() string { return "local" }

// Ready implements engine.Engine: memory is always ready.
func (e *Engine) Ready() bool { return true }

// Start implements engine.Engine; it also sweeps expired cache entries.
func (e *Engine) Start(ctx context.Context, local engine.Local) error {
	e.local = local
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.sweepCache()
				e.sweepKV()
			}
		}
	}()
	return nil
}

// Close implements engine.Engine.
func (e *Engine) Close() error { return nil }

// Publish implements engine.Engine: on one node, publishing is local delivery.
func (e *Engine) Publish(_ context.Context, p engine.Publication) error {
	e.local.DeliverLocal(p)
	return nil
}

// Interest implements engine.Engine; one node needs no routing.
func (e *Engine) Interest(context.Context, string, string, bool) error { return nil }

// Occupancy implements engine.Engine.
func (e *Engine) Occupancy(_ context.Context, ns, channel string, delta int) (int, error) {
	e.occMu.Lock()
	defer e.occMu.Unlock()
	k := key{ns, channel}
	n := e.occupancy[k] + delta
	if n <= 0 {
		delete(e.occupancy, k)
		return 0, nil
	}
	e.occupancy[k] = n
	return n, nil
}

// Channels implements engine.Engine.
func (e *Engine) Channels(_ context.Context, ns, prefix string) (map[string]engine.ChannelStats, error) {
	out := map[string]engine.ChannelStats{}
	e.occMu.Lock()
	for k, n := range e.occupancy {
		if k.ns == ns && strings.HasPrefix(k.name, prefix) {
			out[k.name] = engine.ChannelStats{Subscriptions: n}
		}
	}
	e.occMu.Unlock()
	e.presMu.Lock()
	for name, st := range out {
		if users := e.presence[key{ns, name}]; users != nil {
			st.Users = len(users)
			out[name] = st
		}
	}
	e.presMu.Unlock()
	return out, nil
}

// Channel implements engine.Engine.
func (e *Engine) Channel(_ context.Context, ns, name string) (engine.ChannelStats, bool, error) {
	k := key{ns, name}
	e.occMu.Lock()
	n := e.occupancy[k]
	e.occMu.Unlock()
	if n == 0 {
		return engine.ChannelStats{}, false, nil
	}
	e.presMu.Lock()
	users := len(e.presence[k])
	e.presMu.Unlock()
	return engine.ChannelStats{Subscriptions: n, Users: users}, true, nil
}

// PresenceAdd implements engine.Presence.
func (e *Engine) PresenceAdd(_ context.Context, ns, channel, connKey string, m engine.Member, limit int) (bool, error) {
	e.presMu.Lock()
	defer e.presMu.Unlock()
	k := key{ns, channel}
	users := e.presence[k]
	u := users[m.UserID]
	first := u == nil
	if first && limit > 0 && len(users) >= limit {
		return false, engine.ErrFull
	}
	if users == nil {
		users = map[string]*presenceUser{}
		e.presence[k] = users
	}
	if first {
		u = &presenceUser{conns: map[string]struct{}{}}
		users[m.UserID] = u
	}
	// The newest connection's user_info wins, as it would after a
	// reconnect with fresh data.
	u.info = m.Info
	u.conns[connKey] = struct{}{}
	return first, nil
}

// PresenceRemove implements engine.Presence.
func (e *Engine) PresenceRemove(_ context.Context, ns, channel, connKey, userID string) (bool, error) {
	e.presMu.Lock()
	defer e.presMu.Unlock()
	k := key{ns, channel}
	users := e.presence[k]
	u := users[userID]
	if u == nil {
		return false, nil
	}
	if _, ok := u.conns[connKey]; !ok {
		return false, nil
	}
	delete(u.conns, connKey)
	if len(u.conns) > 0 {
		return false, nil
	}
	delete(users, userID)
	if len(users) == 0 {
		delete(e.presence, k)
	}
	return true, nil
}

// PresenceMembers implements engine.Presence.
func (e *Engine) PresenceMembers(_ context.Context, ns, channel string) ([]engine.Member, error) {
	e.presMu.Lock()
	users := e.presence[key{ns, channel}]
	out := make([]engine.Member, 0, len(users))
	for id, u := range users {
		out = append(out, engine.Member{UserID: id, Info: u.info})
	}
	e.presMu.Unlock()
	slices.SortFunc(out, func(a, b engine.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// PresenceCount implements engine.Presence.
func (e *Engine) PresenceCount(_ context.Context, ns, channel string) (int, error) {
	e.presMu.Lock()
	defer e.presMu.Unlock()
	return len(e.presence[key{ns, channel}]), nil
}

// UserOnline implements engine.Users.
func (e *Engine) UserOnline(_ context.Context, ns, userID, connKey string) (bool, error) {
	e.usersMu.Lock()
	defer e.usersMu.Unlock()
	k := key{ns, userID}
	conns := e.users[k]
	if conns == nil {
		conns = map[string]struct{}{}
		e.users[k] = conns
	}
	conns[connKey] = struct{}{}
	return len(conns) == 1, nil
}

// UserOffline implements engine.Users.
func (e *Engine) UserOffline(_ context.Context, ns, userID, connKey string) (bool, error) {
	e.usersMu.Lock()
	defer e.usersMu.Unlock()
	k := key{ns, userID}
	conns := e.users[k]
	if _, ok := conns[connKey]; !ok {
		return false, nil
	}
	delete(conns, connKey)
	if len(conns) == 0 {
		delete(e.users, k)
		return true, nil
	}
	return false, nil
}

// OnlineUsers implements engine.Users.
func (e *Engine) OnlineUsers(_ context.Context, ns string, ids []string) ([]string, error) {
	e.usersMu.Lock()
	defer e.usersMu.Unlock()
	var out []string
	for _, id := range ids {
		if len(e.users[key{ns, id}]) > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// TerminateUser implements engine.Users.
func (e *Engine) TerminateUser(_ context.Context, ns, userID string) error {
	e.local.TerminateLocal(ns, userID)
	return nil
}

// CacheSet implements engine.Cache.
func (e *Engine) CacheSet(_ context.Context, ns, channel string, payload []byte, ttl time.Duration) error {
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	e.cache[key{ns, channel}] = cacheEntry{payload: payload, expires: e.now().Add(ttl)}
	return nil
}

// CacheGet implements engine.Cache.
func (e *Engine) CacheGet(_ context.Context, ns, channel string) ([]byte, time.Duration, bool, error) {
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	k := key{ns, channel}
	ent, ok := e.cache[k]
	if !ok {
		return nil, 0, false, nil
	}
	left := ent.expires.Sub(e.now())
	if left <= 0 {
		delete(e.cache, k)
		return nil, 0, false, nil
	}
	return ent.payload, left, true, nil
}

func (e *Engine) sweepCache() {
	now := e.now()
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	for k, ent := range e.cache {
		if !now.Before(ent.expires) {
			delete(e.cache, k)
		}
	}
}

// Claim implements engine.Claims.
func (e *Engine) Claim(_ context.Context, ns, claimKey, connKey string) (string, error) {
	e.claimMu.Lock()
	k := key{ns, claimKey}
	prev := e.claims[k]
	e.claims[k] = connKey
	e.claimMu.Unlock()
	if prev == connKey {
		return "", nil
	}
	if prev != "" {
		e.local.KickLocal(ns, prev, claimKey)
	}
	return prev, nil
}

// Release implements engine.Claims.
func (e *Engine) Release(_ context.Context, ns, claimKey, connKey string) (bool, error) {
	e.claimMu.Lock()
	defer e.claimMu.Unlock()
	k := key{ns, claimKey}
	if e.claims[k] != connKey {
		return false, nil
	}
	delete(e.claims, k)
	return true, nil
}
