package loadgen

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errTally counts errors by message (capped), so a report can say what went
// wrong without storing one string per failed connection.
type errTally struct {
	mu    sync.Mutex
	total int64
	kinds map[string]int64
}

const maxErrKinds = 20

func (t *errTally) add(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	// Strip per-connection detail (ports) so equal causes group together.
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg[:i], "127.0.0.") {
		msg = msg[i+2:]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	if t.kinds == nil {
		t.kinds = make(map[string]int64)
	}
	if _, ok := t.kinds[msg]; ok || len(t.kinds) < maxErrKinds {
		t.kinds[msg]++
	} else {
		t.kinds["(other)"]++
	}
}

// Total is the number of errors counted.
func (t *errTally) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// Top returns the most frequent messages as "count× message".
func (t *errTally) Top(n int) []ErrorCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ErrorCount, 0, len(t.kinds))
	for k, v := range t.kinds {
		out = append(out, ErrorCount{Message: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Message < out[j].Message
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// ErrorCount is one row of an error tally.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// Pool opens and holds many connections.
type Pool struct {
	cfg    Common
	clock  *Clock
	dialer *sourceDialer
	log    *slog.Logger
	onMsg  MessageFunc

	mu    sync.Mutex
	conns []*Conn

	ConnectLatency *Recorder
	ConnectErrors  errTally
	SetupErrors    errTally
	ServerErrors   errTally
	attempted      atomic.Int64
	connected      atomic.Int64
}

// NewPool prepares a pool; onMsg handles every non-control message.
func NewPool(cfg Common, clock *Clock, log *slog.Logger, onMsg MessageFunc) *Pool {
	return &Pool{
		cfg:            cfg,
		clock:          clock,
		dialer:         newSourceDialer(cfg.SourceAddrs, cfg.ConnectTimeout),
		log:            log,
		onMsg:          onMsg,
		ConnectLatency: NewRecorder(),
	}
}

func (p *Pool) dialOpts() DialOptions {
	return DialOptions{
		URL:     p.cfg.Target.WSURL(),
		Dialer:  p.dialer,
		Timeout: p.cfg.ConnectTimeout,
		Clock:   p.clock,
		OnMsg:   p.onMsg,
		OnError: func(_ *Conn, ev envelope) {
			var ed errorData
			_ = ev.dataObject(&ed)
			p.ServerErrors.add(errors.New(ev.Event + ": " + ed.String()))
		},
	}
}

// Dial opens one connection (not added to the pool) and records its connect
// latency and errors. Used directly by the churn scenario.
func (p *Pool) Dial(ctx context.Context, id int) (*Conn, error) {
	p.attempted.Add(1)
	t0 := p.clock.Now()
	c, err := Dial(ctx, id, p.dialOpts())
	if err != nil {
		p.ConnectErrors.add(err)
		return nil, err
	}
	now := p.clock.Now()
	p.ConnectLatency.Record(id, time.Duration(now-t0), now)
	p.connected.Add(1)
	return c, nil
}

// SetupFunc prepares a fresh connection (typically: subscribe). id is the
// connection's index in the pool.
type SetupFunc func(ctx context.Context, c *Conn) error

// ConnectN opens n connections with bounded concurrency (and rate, if
// configured), runs setup on each, and keeps the ones that succeed. It
// returns how many are held. A connection whose setup fails is closed and
// counted in SetupErrors.
func (p *Pool) ConnectN(ctx context.Context, n int, setup SetupFunc) int {
	p.mu.Lock()
	base := len(p.conns)
	p.conns = append(p.conns, make([]*Conn, n)...)
	p.mu.Unlock()

	sem := make(chan struct{}, p.cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	start := func(i int) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := base + i
			c, err := p.Dial(ctx, id)
			if err != nil {
				return
			}
			if setup != nil {
				sctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
				err = setup(sctx, c)
				cancel()
				if err != nil {
					p.SetupErrors.add(err)
					c.Close()
					return
				}
			}
			p.mu.Lock()
			p.conns[id] = c
			p.mu.Unlock()
		}()
	}
	if p.cfg.ConnectRate > 0 {
		s := Schedule{Start: p.clock.Now(), Rate: p.cfg.ConnectRate, Count: int64(n)}
		_, _ = s.Run(ctx, p.clock, 0, func(i, _ int64) { start(int(i)) })
	} else {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			start(i)
		}
	}
	wg.Wait()
	return p.Held()
}

// Conns returns the live connections, in id order.
func (p *Pool) Conns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != nil && c.Alive() {
			out = append(out, c)
		}
	}
	return out
}

// Held counts live connections.
func (p *Pool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c != nil && c.Alive() {
			n++
		}
	}
	return n
}

// Attempted is the number of dials started.
func (p *Pool) Attempted() int64 { return p.attempted.Load() }

// KeepAlive pings idle connections until ctx ends. One goroutine sweeps all
// connections, instead of a timer per connection, to keep 19,000 idle
// connections cheap.
func (p *Pool) KeepAlive(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := p.clock.Now()
		for _, c := range p.Conns() {
			if ctx.Err() != nil {
				return
			}
			c.pingIfIdle(now, pingAfter(c.ActivityTimeout))
		}
	}
}

// pingAfter is when an idle connection should ping: a little before the
// server's activity_timeout (pusher-js pings at the timeout; we keep a
// margin because our sweep runs every 5 s), never later than 120 s.
func pingAfter(activity time.Duration) time.Duration {
	if activity <= 0 || activity > 120*time.Second {
		activity = 120 * time.Second
	}
	return max(activity-10*time.Second, activity/2)
}

// CloseAll closes every connection with a few parallel closers and waits
// (bounded by timeout) for their read loops to finish.
func (p *Pool) CloseAll(timeout time.Duration) {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	work := make(chan *Conn, 256)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.Close()
			}
		}()
	}
	for _, c := range conns {
		if c != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
	deadline := time.After(timeout)
	for _, c := range conns {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
		case <-deadline:
			return
		}
	}
}
