package console

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Sample is one second of the node, for the charts.
type Sample struct {
	T           int64          `json:"t"`           // unix milliseconds
	Connections int            `json:"connections"` // open, all protocols
	ByProtocol  map[string]int `json:"by_protocol"`
	MessagesIn  float64        `json:"messages_in"` // per second, from clients
	Deliveries  float64        `json:"deliveries"`  // per second, queued by fan-out

	totals *Counters   // the cumulative values the rates came from
	apps   []ConnCount // open connections by protocol and app
}

// ring keeps the last len(buf) samples; guarded by Console.mu.
type ring struct {
	buf  []Sample
	next int
	n    int
}

func (r *ring) add(s Sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

func (r *ring) last() (Sample, bool) {
	if r.n == 0 {
		return Sample{}, false
	}
	return r.buf[(r.next-1+len(r.buf))%len(r.buf)], true
}

// all returns the samples oldest first.
func (r *ring) all() []Sample {
	out := make([]Sample, 0, r.n)
	for i := r.n; i > 0; i-- {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// sampleLoop takes a sample every second, whether or not anyone watches,
// so a page opened now shows the last minutes.
func (c *Console) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	c.takeSample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.takeSample()
			c.broadcastState()
		}
	}
}

func (c *Console) takeSample() {
	if c.opts.Counters == nil {
		return
	}
	cur := c.opts.Counters()
	s := Sample{T: now().UnixMilli(), ByProtocol: map[string]int{}, totals: &cur, apps: cur.Connections}
	for _, cc := range cur.Connections {
		s.Connections += cc.Open
		s.ByProtocol[cc.Protocol] += cc.Open
	}
	c.mu.Lock()
	if prev, ok := c.samples.last(); ok && prev.totals != nil {
		secs := float64(s.T-prev.T) / 1000
		if secs > 0 {
			// A counter never goes down; max guards a registry reset.
			s.MessagesIn = max(0, cur.MessagesIn-prev.totals.MessagesIn) / secs
			s.Deliveries = max(0, cur.Deliveries-prev.totals.Deliveries) / secs
		}
	}
	c.samples.add(s)
	c.mu.Unlock()
}

// State is what the page shows, once a second.
type State struct {
	T          int64       `json:"t"`
	Totals     []ConnCount `json:"totals"` // open connections by protocol and app
	Namespaces []Namespace `json:"namespaces"`
	Sample     *Sample     `json:"sample,omitempty"`
	// Lost counts publications the tap had no room for (all viewers).
	Lost uint64 `json:"lost"`
	// Dropped counts events this viewer's queue had no room for.
	Dropped uint64 `json:"dropped"`
	// Forms says which publish forms the node offers.
	Forms Forms `json:"forms"`
}

// Forms lists what the publish form can target.
type Forms struct {
	PusherApps []string `json:"pusher_apps"`
	Damon      bool     `json:"damon"`
}

// Namespace is one app or protocol space on this node.
type Namespace struct {
	Name        string        `json:"name"`
	Protocol    string        `json:"protocol"`
	Connections int           `json:"connections"`
	Listed      int           `json:"listed"` // connections below; fewer when capped
	Channels    []Channel     `json:"channels"`
	Conns       []Connection  `json:"conns"`
	Presence    []PresenceSet `json:"presence,omitempty"`
}

// Channel is a channel (room, group) with its subscribers on this node.
type Channel struct {
	Name        string `json:"name"`
	Subscribers int    `json:"subscribers"`
}

// Connection is one client connection.
type Connection struct {
	Key         string   `json:"key"`
	ID          uint64   `json:"id,omitempty"`
	Remote      string   `json:"remote,omitempty"`
	QueuedBytes int      `json:"queued_bytes"`
	LastRead    int64    `json:"last_read,omitempty"` // unix milliseconds
	Channels    []string `json:"channels"`
}

// PresenceSet is a presence channel's members.
type PresenceSet struct {
	Channel string          `json:"channel"`
	Members []engine.Member `json:"members"`
}

// Bounds on what one snapshot reads from the engine.
const (
	maxPresenceChannels = 50
	maxPresenceMembers  = 100
)

// snapshot reads the hub now.
func (c *Console) snapshot(ctx context.Context) State {
	st := State{T: now().UnixMilli(), Lost: c.lost.load(), Forms: Forms{PusherApps: c.opts.PusherApps, Damon: c.opts.PublishDamon != nil}}
	if st.Forms.PusherApps == nil || c.opts.PublishPusher == nil {
		st.Forms.PusherApps = []string{}
	}
	c.mu.Lock()
	if s, ok := c.samples.last(); ok {
		st.Sample = &s
		st.Totals = s.apps
	}
	c.mu.Unlock()
	if st.Totals == nil {
		st.Totals = []ConnCount{}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, ns := range c.opts.Hub.Inspect(c.opts.MaxConns) {
		n := Namespace{Name: ns.Namespace, Protocol: c.opts.Protocol(ns.Namespace), Connections: ns.Connections,
			Listed: len(ns.Conns), Channels: make([]Channel, 0, len(ns.Channels)), Conns: make([]Connection, 0, len(ns.Conns))}
		for _, ch := range ns.Channels {
			n.Channels = append(n.Channels, Channel{Name: ch.Name, Subscribers: ch.Local})
			if n.Protocol == "pusher" && strings.HasPrefix(ch.Name, "presence-") && len(n.Presence) < maxPresenceChannels {
				members, err := c.opts.Hub.PresenceMembers(ctx, ns.Namespace, ch.Name)
				if err == nil {
					n.Presence = append(n.Presence, PresenceSet{Channel: ch.Name, Members: members[:min(len(members), maxPresenceMembers)]})
				}
			}
		}
		for _, cs := range ns.Conns {
			conn := Connection{Key: cs.Key, Channels: cs.Channels}
			if conn.Channels == nil {
				conn.Channels = []string{}
			}
			if tc := cs.Conn; tc != nil {
				conn.ID = tc.ID()
				if a := tc.RemoteAddr(); a != nil {
					conn.Remote = a.String()
				}
				conn.QueuedBytes = tc.QueuedBytes()
				if lr := tc.LastRead(); !lr.IsZero() && lr.Unix() > 0 {
					conn.LastRead = lr.UnixMilli()
				}
			}
			n.Conns = append(n.Conns, conn)
		}
		st.Namespaces = append(st.Namespaces, n)
	}
	if st.Namespaces == nil {
		st.Namespaces = []Namespace{}
	}
	return st
}

// history is the ring as JSON, for a viewer that just connected.
func (c *Console) history() []byte {
	c.mu.Lock()
	s := c.samples.all()
	c.mu.Unlock()
	b, _ := json.Marshal(s)
	return b
}
