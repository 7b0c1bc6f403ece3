package hub

import (
	"sort"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// What operator tools (internal/console) read from the hub: a tap on every
// publication and a snapshot of this node's connections and channels.
// Neither costs the delivery path anything beyond one atomic load in
// Publish while no tap is set.

// Tap hears every publication made through this node's hub (HTTP API
// events, client events, Damon and ws-room messages...), before the
// engine sends it. Published runs on the publisher's goroutine: it must
// not block and must not keep p.Payload past the call unless it copies it
// (payloads are not modified after publishing, so keeping is safe).
type Tap interface {
	Published(p engine.Publication)
}

type tapBox struct{ tap Tap }

// SetTap installs t as the hub's tap; nil removes it.
func (h *Hub) SetTap(t Tap) {
	if t == nil {
		h.tap.Store(nil)
		return
	}
	h.tap.Store(&tapBox{tap: t})
}

// Inspectable is a subscriber that shows its transport connection (remote
// address, queued bytes) to operator tools.
type Inspectable interface {
	Transport() transport.Conn
}

// ConnSnapshot is one connection of a namespace.
type ConnSnapshot struct {
	Key      string
	Conn     transport.Conn // nil when the subscriber is not Inspectable
	Channels []string       // its subscriptions on this node, sorted
}

// ChannelSnapshot is one channel with subscribers on this node.
type ChannelSnapshot struct {
	Name  string
	Local int // this node's subscriptions
}

// NamespaceSnapshot is one namespace as this node holds it.
type NamespaceSnapshot struct {
	Namespace   string
	Connections int            // all of them, however many are listed
	Conns       []ConnSnapshot // at most the limit given to Inspect, by key
	Channels    []ChannelSnapshot
}

// Inspect returns every namespace this node holds, sorted by name, with
// its channels and at most maxConns connections each (with their
// subscriptions). It takes the hub's locks briefly, one namespace at a
// time, in the documented order; it is meant for a tool that asks about
// once a second, not for the delivery path.
func (h *Hub) Inspect(maxConns int) []NamespaceSnapshot {
	h.mu.RLock()
	names := make([]string, 0, len(h.spaces))
	spaces := make([]*space, 0, len(h.spaces))
	for ns, sp := range h.spaces {
		names = append(names, ns)
		spaces = append(spaces, sp)
	}
	h.mu.RUnlock()
	out := make([]NamespaceSnapshot, 0, len(names))
	for i, sp := range spaces {
		out = append(out, sp.inspect(names[i], maxConns))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

func (sp *space) inspect(ns string, maxConns int) NamespaceSnapshot {
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	snap := NamespaceSnapshot{Namespace: ns, Connections: len(sp.conns)}
	keys := make([]string, 0, len(sp.conns))
	for k := range sp.conns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > maxConns {
		keys = keys[:max(maxConns, 0)]
	}
	listed := make(map[Subscriber]int, len(keys))
	snap.Conns = make([]ConnSnapshot, len(keys))
	for i, k := range keys {
		s := sp.conns[k]
		snap.Conns[i].Key = k
		if in, ok := s.(Inspectable); ok {
			snap.Conns[i].Conn = in.Transport()
		}
		listed[s] = i
	}
	snap.Channels = make([]ChannelSnapshot, 0, len(sp.channels))
	for name, ch := range sp.channels {
		ch.mu.RLock()
		if len(ch.subs) == 0 {
			ch.mu.RUnlock()
			continue // vacated while a fan-out ran, and about to go
		}
		snap.Channels = append(snap.Channels, ChannelSnapshot{Name: name, Local: len(ch.subs)})
		for _, s := range ch.subs {
			if i, ok := listed[s]; ok {
				snap.Conns[i].Channels = append(snap.Conns[i].Channels, name)
			}
		}
		ch.mu.RUnlock()
	}
	sort.Slice(snap.Channels, func(i, j int) bool { return snap.Channels[i].Name < snap.Channels[j].Name })
	for i := range snap.Conns {
		sort.Strings(snap.Conns[i].Channels)
	}
	return snap
}
