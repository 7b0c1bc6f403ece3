package redisengine

import (
	"context"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// subscriber owns the node's one pub/sub connection (a rueidis dedicated
// client): the control channel plus one channel per (namespace, channel)
// with local interest. One goroutine owns the connection; Interest calls
// queue requests, which it merges into one SUBSCRIBE and one UNSUBSCRIBE,
// and answers once Redis confirmed them. When the connection breaks, or
// stops answering the liveness PING (a connection can wedge silently after
// a failover: centrifugo#1189), it dials again and resubscribes everything.
type subscriber struct {
	e       *Engine
	stopped <-chan struct{} // the engine stopped: nobody serves reqs
	reqs    chan subReq
	firstUp chan struct{}
	upOnce  sync.Once

	mu   sync.RWMutex
	want map[string]struct{} // channels with local interest (the source of truth)
}

type subReq struct {
	channel string
	on      bool
	done    chan struct{}
}

// subBatch caps the channels in one SUBSCRIBE, so a resubscribe of many
// channels does not build one huge command.
const subBatch = 512

func newSubscriber(e *Engine, stopped <-chan struct{}) *subscriber {
	return &subscriber{e: e, stopped: stopped, reqs: make(chan subReq, 1024), firstUp: make(chan struct{}), want: map[string]struct{}{}}
}

// has reports whether this node has interest in the channel.
func (s *subscriber) has(channel string) bool {
	s.mu.RLock()
	_, ok := s.want[channel]
	s.mu.RUnlock()
	return ok
}

// interest records the wish and waits until the connection applied it, or
// until the connection is down (a reconnect applies every wish), or ctx.
func (s *subscriber) interest(ctx context.Context, channel string, on bool) {
	r := subReq{channel: channel, on: on, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return
	case <-s.stopped:
		return
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-s.stopped:
	}
}

func (s *subscriber) run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if s.session(ctx) {
			backoff = 50 * time.Millisecond
		}
		s.e.subUp.Store(false)
		// While down, record wishes and answer at once: the next session
		// subscribes to all of them.
		t := time.NewTimer(backoff)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case r := <-s.reqs:
				s.record(r)
				close(r.done)
			case <-t.C:
				break wait
			}
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *subscriber) record(r subReq) {
	s.mu.Lock()
	if r.on {
		s.want[r.channel] = struct{}{}
	} else {
		delete(s.want, r.channel)
	}
	s.mu.Unlock()
}

// session runs one connection until it breaks; it reports whether the
// connection came up.
func (s *subscriber) session(ctx context.Context) bool {
	dc, _ := s.e.client.Dedicate()
	defer dc.Close() // never back to the pool: it may be broken or subscribed
	broken := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: s.e.onMessage})
	timeout := s.e.o.probeTimeout()

	// Everything wanted now, plus the control channel.
	s.mu.RLock()
	all := make([]string, 0, len(s.want)+1)
	all = append(all, s.e.k.control())
	for ch := range s.want {
		all = append(all, ch)
	}
	s.mu.RUnlock()
	active := make(map[string]struct{}, len(all))
	for i := 0; i < len(all); i += subBatch {
		part := all[i:min(i+subBatch, len(all))]
		if err := s.command(ctx, dc, timeout, true, part); err != nil {
			s.e.log.Warn("redis pub/sub: subscribe failed", "err", err)
			return false
		}
		for _, ch := range part {
			active[ch] = struct{}{}
		}
	}
	s.e.subUp.Store(true)
	s.upOnce.Do(func() { close(s.firstUp) })

	probe := time.NewTicker(s.e.o.Heartbeat)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case err := <-broken:
			s.e.log.Warn("redis pub/sub: connection lost, resubscribing", "err", err)
			return true
		case <-probe.C:
			// An idle subscribed connection may be dead without an error
			// (no RST through a failed proxy): ask it.
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err := dc.Do(pctx, dc.B().Ping().Build()).Error()
			cancel()
			if err != nil && ctx.Err() == nil {
				s.e.log.Warn("redis pub/sub: liveness probe failed, reconnecting", "err", err)
				return true
			}
		case r := <-s.reqs:
			batch := []subReq{r}
		more:
			for len(batch) < subBatch {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
				default:
					break more
				}
			}
			ok := s.apply(ctx, dc, timeout, batch, active)
			for _, r := range batch {
				close(r.done)
			}
			if !ok {
				return true
			}
		}
	}
}

// apply records a batch of wishes and brings the connection in line with
// them: one SUBSCRIBE for the new channels, one UNSUBSCRIBE for the gone.
func (s *subscriber) apply(ctx context.Context, dc rueidis.DedicatedClient, timeout time.Duration, batch []subReq, active map[string]struct{}) bool {
	touched := make(map[string]struct{}, len(batch))
	for _, r := range batch {
		s.record(r)
		touched[r.channel] = struct{}{}
	}
	var sub, unsub []string
	s.mu.RLock()
	for ch := range touched {
		_, want := s.want[ch]
		_, have := active[ch]
		switch {
		case want && !have:
			sub = append(sub, ch)
		case !want && have:
			unsub = append(unsub, ch)
		}
	}
	s.mu.RUnlock()
	if len(sub) > 0 {
		if err := s.command(ctx, dc, timeout, true, sub); err != nil {
			s.e.log.Warn("redis pub/sub: subscribe failed, reconnecting", "err", err)
			return false
		}
		for _, ch := range sub {
			active[ch] = struct{}{}
		}
	}
	if len(unsub) > 0 {
		if err := s.command(ctx, dc, timeout, false, unsub); err != nil {
			s.e.log.Warn("redis pub/sub: unsubscribe failed, reconnecting", "err", err)
			return false
		}
		for _, ch := range unsub {
			delete(active, ch)
		}
	}
	return true
}

// command sends SUBSCRIBE or UNSUBSCRIBE; rueidis returns once Redis
// confirmed every channel.
func (s *subscriber) command(ctx context.Context, dc rueidis.DedicatedClient, timeout time.Duration, on bool, chs []string) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cmd rueidis.Completed
	if on {
		cmd = dc.B().Subscribe().Channel(chs...).Build()
	} else {
		cmd = dc.B().Unsubscribe().Channel(chs...).Build()
	}
	return dc.Do(cctx, cmd).Error()
}
