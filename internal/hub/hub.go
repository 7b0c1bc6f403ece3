// Package hub is Switchboard's core: namespaces (apps), channels,
// subscriptions, presence, signed-in users and fan-out. Every protocol uses
// it the same way; it knows nothing of any protocol's wire format. Anything
// that must be true across a cluster (delivery to other nodes, presence,
// occupancy, cached events, user sessions) goes through the engine.
//
// Locks follow the server's one order, docs/locking.md (an interest
// stripe, then Hub.mu, then space.mu, then channel.fanMu, then
// channel.mu). Subscriber.Deliver
// is called with no hub lock held (fanout.go), but it must not block: one
// slow recipient would delay every other one.
package hub

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// Subscriber is a connection as the hub sees it.
type Subscriber interface {
	// Deliver queues a broadcast for the connection without blocking. The
	// message is shared by every recipient; a subscriber that needs a
	// per-recipient variant (Damon's fresh message id) makes its own copy.
	Deliver(m *transport.Message)
	// Terminate ends the connection because the app asked for it (a
	// cluster-wide "terminate this user's connections").
	Terminate()
}

// Observer hears about fan-out for metrics; it must be cheap.
type Observer interface {
	Delivered(namespace string, n int)
}

// ErrAlreadySubscribed is returned by Subscribe for a repeated subscription.
var ErrAlreadySubscribed = errors.New("hub: already subscribed")

// Hub is one node's view of every namespace.
type Hub struct {
	eng engine.Engine
	obs Observer
	// tap hears every publication while an operator tool watches (the
	// console); nil otherwise, so Publish pays one atomic load for it.
	tap atomic.Pointer[tapBox]

	mu     sync.RWMutex
	spaces map[string]*space
	owners map[string]Owner // namespace -> its protocol front-end

	// interest serializes, per channel (striped by hash), a subscription
	// change with the engine.Interest call it causes, so a channel's
	// first-subscribe and last-unsubscribe reach a cluster engine in the
	// order they happened here (else a node could end up subscribed to
	// nothing while it has subscribers). Taken before space.mu.
	interest     [64]sync.Mutex
	interestSeed maphash.Seed
}

func (h *Hub) interestLock(ns, name string) *sync.Mutex {
	var mh maphash.Hash
	mh.SetSeed(h.interestSeed)
	mh.WriteString(ns)
	mh.WriteByte(0)
	mh.WriteString(name)
	return &h.interest[mh.Sum64()%uint64(len(h.interest))]
}

type space struct {
	// localCounts: Subscribe and Unsubscribe return this node's count and
	// never write cluster-wide occupancy (set once, before use, by
	// CountLocally).
	localCounts atomic.Bool

	mu       sync.RWMutex
	channels map[string]*channel
	conns    map[string]Subscriber            // by connection key, for exclusion
	users    map[string]map[Subscriber]string // signed-in user id -> conns -> conn key
}

type channel struct {
	mu   sync.RWMutex
	subs []Subscriber // a slice, not a map: fan-out iterates it per message
	// index finds a subscriber's place in subs; nil while the channel is
	// small enough to search (see indexAbove).
	index map[Subscriber]int
	// version counts subscribes and unsubscribes (under mu): broadcasts
	// waiting in a busy channel share one copy of the subscriber list
	// while it stays the same (fanout.go).
	version uint32

	// fanMu guards running, vacated and fan; taken before mu, never held
	// while delivering. running: a fan-out runs now. fan is made the first
	// time a broadcast has to wait, and kept (a channel that was busy once
	// is likely to be again); a quiet channel never has one.
	//
	// vacated: the last subscriber left while a fan-out ran, so the
	// channel stayed in its namespace (a subscriber coming back must queue
	// behind what still waits in it, not overtake it through a new
	// channel); whoever ends the fan-out removes it (fanout.go). Next to
	// running, it keeps the struct at 80 bytes (88 after fan).
	fanMu   sync.Mutex
	running bool
	vacated bool
	fan     *fanState
}

// New returns a hub on eng; call Start before use.
func New(eng engine.Engine, obs Observer) *Hub {
	if obs == nil {
		obs = nopObserver{}
	}
	return &Hub{eng: eng, obs: obs, spaces: map[string]*space{}, interestSeed: maphash.MakeSeed()}
}

type nopObserver struct{}

func (nopObserver) Delivered(string, int) {}

// Start starts the engine with this hub as its local delivery target.
func (h *Hub) Start(ctx context.Context) error { return h.eng.Start(ctx, h) }

func (h *Hub) space(ns string, create bool) *space {
	h.mu.RLock()
	sp := h.spaces[ns]
	h.mu.RUnlock()
	if sp != nil || !create {
		return sp
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sp = h.spaces[ns]; sp == nil {
		sp = &space{channels: map[string]*channel{}, conns: map[string]Subscriber{}, users: map[string]map[Subscriber]string{}}
		h.spaces[ns] = sp
	}
	return sp
}

// CountLocally makes Subscribe and Unsubscribe in namespace ns return this
// node's subscription counts and keep no cluster-wide occupancy: for
// protocols with no occupancy events or channel queries (Damon), so that a
// connection costs the cluster's store nothing. Call it before the
// namespace is used.
func (h *Hub) CountLocally(ns string) {
	h.space(ns, true).localCounts.Store(true)
}

// Connect registers a live connection under key (unique in the namespace).
func (h *Hub) Connect(ns, key string, s Subscriber) {
	sp := h.space(ns, true)
	sp.mu.Lock()
	sp.conns[key] = s
	sp.mu.Unlock()
}

// Disconnect forgets a connection; the protocol unsubscribes it first.
func (h *Hub) Disconnect(ns, key string) {
	if sp := h.space(ns, false); sp != nil {
		sp.mu.Lock()
		delete(sp.conns, key)
		sp.mu.Unlock()
	}
}

// Connections is the number of this node's connections in the namespace.
func (h *Hub) Connections(ns string) int {
	sp := h.space(ns, false)
	if sp == nil {
		return 0
	}
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	return len(sp.conns)
}

// Subscribe adds s to a channel and returns the channel's cluster-wide
// subscription count afterwards (1 means it just became occupied).
func (h *Hub) Subscribe(ctx context.Context, ns, name string, s Subscriber) (int, error) {
	sp := h.space(ns, true)
	il := h.interestLock(ns, name)
	il.Lock()
	sp.mu.Lock()
	ch := sp.channels[name]
	if ch == nil {
		ch = &channel{}
		sp.channels[name] = ch
	}
	ch.mu.Lock()
	// A channel with no subscribers here is new, or vacated while a
	// fan-out still ran in it (Unsubscribe): either way this node's
	// interest in it had gone.
	firstHere := len(ch.subs) == 0
	if _, dup := ch.find(s); dup {
		ch.mu.Unlock()
		sp.mu.Unlock()
		il.Unlock()
		return 0, ErrAlreadySubscribed
	}
	ch.add(s)
	ch.version++
	local := len(ch.subs)
	ch.mu.Unlock()
	sp.mu.Unlock()
	if firstHere {
		err := h.eng.Interest(ctx, ns, name, true)
		il.Unlock()
		if err != nil {
			return 0, err
		}
	} else {
		il.Unlock()
	}
	if sp.localCounts.Load() {
		return local, nil
	}
	return h.eng.Occupancy(ctx, ns, name, 1)
}

// Unsubscribe removes s from a channel. It reports whether s was
// subscribed and the cluster-wide count afterwards (0: vacated).
func (h *Hub) Unsubscribe(ctx context.Context, ns, name string, s Subscriber) (int, bool, error) {
	sp := h.space(ns, false)
	if sp == nil {
		return 0, false, nil
	}
	il := h.interestLock(ns, name)
	il.Lock()
	sp.mu.Lock()
	ch := sp.channels[name]
	if ch == nil {
		sp.mu.Unlock()
		il.Unlock()
		return 0, false, nil
	}
	ch.mu.Lock()
	i, ok := ch.find(s)
	if ok {
		ch.remove(i)
		ch.version++
	}
	local := len(ch.subs)
	empty := local == 0
	ch.mu.Unlock()
	if empty {
		sp.removeIfIdle(name, ch)
	}
	sp.mu.Unlock()
	if !ok || !empty {
		il.Unlock()
	}
	if !ok {
		return 0, false, nil
	}
	if empty {
		err := h.eng.Interest(ctx, ns, name, false)
		il.Unlock()
		if err != nil {
			return 0, true, err
		}
	}
	if sp.localCounts.Load() {
		return local, true, nil
	}
	n, err := h.eng.Occupancy(ctx, ns, name, -1)
	return n, true, err
}

// LocalSubscribers is this node's subscription count for a channel.
func (h *Hub) LocalSubscribers(ns, name string) int {
	sp := h.space(ns, false)
	if sp == nil {
		return 0
	}
	sp.mu.RLock()
	ch := sp.channels[name]
	sp.mu.RUnlock()
	if ch == nil {
		return 0
	}
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return len(ch.subs)
}

// Publish sends a pre-encoded message to the channel's subscribers on
// every node.
func (h *Hub) Publish(ctx context.Context, p engine.Publication) error {
	if t := h.tap.Load(); t != nil {
		t.tap.Published(p)
	}
	return h.eng.Publish(ctx, p)
}

// DeliverLocal implements engine.Local: one Message for all recipients.
func (h *Hub) DeliverLocal(p engine.Publication) {
	sp := h.space(p.Namespace, false)
	if sp == nil {
		return
	}
	sp.mu.RLock()
	ch := sp.channels[p.Channel]
	var exclude Subscriber
	if p.ExcludeConn != "" {
		exclude = sp.conns[p.ExcludeConn]
	}
	sp.mu.RUnlock()
	if ch == nil {
		return
	}
	m := transport.Text(p.Payload)
	if p.Binary {
		m = transport.Binary(p.Payload)
	}
	h.broadcast(p.Namespace, p.Channel, ch, m, exclude)
}

// Channels lists the namespace's occupied channels cluster-wide.
func (h *Hub) Channels(ctx context.Context, ns, prefix string) (map[string]engine.ChannelStats, error) {
	out, err := h.eng.Channels(ctx, ns, prefix)
	delete(out, connectionsChannel) // the quota's count (quota.go)
	return out, err
}

// Channel returns one channel's cluster-wide stats and whether it is occupied.
func (h *Hub) Channel(ctx context.Context, ns, name string) (engine.ChannelStats, bool, error) {
	return h.eng.Channel(ctx, ns, name)
}

// PresenceJoin records a member connection; first means member_added.
func (h *Hub) PresenceJoin(ctx context.Context, ns, name, connKey string, m engine.Member) (bool, error) {
	return h.eng.PresenceAdd(ctx, ns, name, connKey, m, 0)
}

// PresenceLeave drops a member connection; last means member_removed.
func (h *Hub) PresenceLeave(ctx context.Context, ns, name, connKey, userID string) (bool, error) {
	return h.eng.PresenceRemove(ctx, ns, name, connKey, userID)
}

// PresenceMembers lists a presence channel's members.
func (h *Hub) PresenceMembers(ctx context.Context, ns, name string) ([]engine.Member, error) {
	return h.eng.PresenceMembers(ctx, ns, name)
}

// PresenceCount is a presence channel's number of distinct users.
func (h *Hub) PresenceCount(ctx context.Context, ns, name string) (int, error) {
	return h.eng.PresenceCount(ctx, ns, name)
}

// UserOnline records a signed-in connection; first means the user came online.
func (h *Hub) UserOnline(ctx context.Context, ns, userID, connKey string, s Subscriber) (bool, error) {
	sp := h.space(ns, true)
	sp.mu.Lock()
	conns := sp.users[userID]
	if conns == nil {
		conns = map[Subscriber]string{}
		sp.users[userID] = conns
	}
	conns[s] = connKey
	sp.mu.Unlock()
	return h.eng.UserOnline(ctx, ns, userID, connKey)
}

// UserOffline drops a signed-in connection; last means the user went offline.
func (h *Hub) UserOffline(ctx context.Context, ns, userID, connKey string, s Subscriber) (bool, error) {
	if sp := h.space(ns, false); sp != nil {
		sp.mu.Lock()
		if conns := sp.users[userID]; conns != nil {
			delete(conns, s)
			if len(conns) == 0 {
				delete(sp.users, userID)
			}
		}
		sp.mu.Unlock()
	}
	return h.eng.UserOffline(ctx, ns, userID, connKey)
}

// OnlineUsers returns which of ids are signed in anywhere in the cluster.
func (h *Hub) OnlineUsers(ctx context.Context, ns string, ids []string) ([]string, error) {
	return h.eng.OnlineUsers(ctx, ns, ids)
}

// TerminateUser ends every connection signed in as userID, cluster-wide.
func (h *Hub) TerminateUser(ctx context.Context, ns, userID string) error {
	return h.eng.TerminateUser(ctx, ns, userID)
}

// TerminateLocal implements engine.Local.
func (h *Hub) TerminateLocal(ns, userID string) int {
	sp := h.space(ns, false)
	if sp == nil {
		return 0
	}
	sp.mu.RLock()
	victims := make([]Subscriber, 0, len(sp.users[userID]))
	for s := range sp.users[userID] {
		victims = append(victims, s)
	}
	sp.mu.RUnlock()
	for _, s := range victims {
		s.Terminate()
	}
	return len(victims)
}

// CacheSet stores a cache channel's last event.
func (h *Hub) CacheSet(ctx context.Context, ns, name string, payload []byte, ttl time.Duration) error {
	return h.eng.CacheSet(ctx, ns, name, payload, ttl)
}

// CacheGet returns a cache channel's last event, if any.
func (h *Hub) CacheGet(ctx context.Context, ns, name string) ([]byte, time.Duration, bool, error) {
	return h.eng.CacheGet(ctx, ns, name)
}
