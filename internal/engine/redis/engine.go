package redisengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// errFenced is returned by a write that Redis refused because this node's
// record is gone; the node fences and rejoins on its next heartbeat.
var errFenced = errors.New("redisengine: this node was dropped from the cluster")

// Engine is the Redis cluster engine. Build it with New, then Start it.
type Engine struct {
	o       Options
	k       keys
	s       *scripts
	log     *slog.Logger
	metrics Metrics

	client rueidis.Client
	local  engine.Local

	id     atomic.Pointer[string]
	ownIDs atomic.Pointer[map[string]struct{}] // every id this process used: echoes to drop

	hbOK         atomic.Bool  // the last heartbeat (or registration) succeeded
	healthySince atomic.Int64 // unix ns since heartbeats succeed without a break; 0 while failing
	subUp        atomic.Bool  // the pub/sub connection is subscribed
	checkHB      chan struct{}

	presence *refTable
	users    *refTable
	sub      *subscriber

	// test hooks
	pauseHB atomic.Bool

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ engine.Engine = (*Engine)(nil)

// New returns an engine with o (defaults filled in); Start connects it.
func New(o Options) *Engine {
	o = o.withDefaults()
	e := &Engine{
		o:        o,
		k:        keys{prefix: o.Prefix},
		s:        newScripts(),
		log:      o.Logger,
		metrics:  o.Metrics,
		checkHB:  make(chan struct{}, 1),
		presence: newRefTable(),
		users:    newRefTable(),
	}
	e.setID(newNodeID(o.NodeName))
	return e
}

func newNodeID(name string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

func (e *Engine) setID(id string) {
	e.id.Store(&id)
	next := map[string]struct{}{id: {}}
	if old := e.ownIDs.Load(); old != nil {
		for k := range *old {
			next[k] = struct{}{}
		}
	}
	e.ownIDs.Store(&next)
}

func (e *Engine) isOwnID(id string) bool {
	_, ok := (*e.ownIDs.Load())[id]
	return ok
}

// NodeID implements engine.Engine.
func (e *Engine) NodeID() string { return *e.id.Load() }

// Ready implements engine.Engine: the node's record is live and its pub/sub
// connection is subscribed.
func (e *Engine) Ready() bool { return e.hbOK.Load() && e.subUp.Load() }

// Start implements engine.Engine: it connects, registers the node and
// subscribes to the control channel, and returns once the node is Ready
// (or fails after NodeTimeout).
func (e *Engine) Start(ctx context.Context, local engine.Local) error {
	copt, err := rueidis.ParseURL(e.o.URL)
	if err != nil {
		return fmt.Errorf("redisengine: url: %w", err)
	}
	copt.DisableCache = true // no client-side caching: every read must see the latest write
	if copt.ClientName == "" {
		copt.ClientName = "switchboard" // visible in CLIENT LIST
	}
	// A wedged connection must fail well before other nodes would reap
	// this one; rueidis also PINGs idle connections at this interval.
	copt.ConnWriteTimeout = e.o.probeTimeout()
	copt.Dialer.KeepAlive = e.o.Heartbeat
	client, err := rueidis.NewClient(copt)
	if err != nil {
		return fmt.Errorf("redisengine: connect %s: %w", redactURL(e.o.URL), err)
	}
	if client.Mode() == rueidis.ClientModeCluster {
		client.Close()
		return fmt.Errorf("redisengine: %s is a Redis Cluster, which this engine does not support (use one Redis or Sentinel)", redactURL(e.o.URL))
	}
	e.client = client
	e.local = local

	startCtx, cancelStart := context.WithTimeout(ctx, e.o.NodeTimeout)
	defer cancelStart()
	if err := e.register(startCtx); err != nil {
		client.Close()
		return fmt.Errorf("redisengine: register: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	e.sub = newSubscriber(e, runCtx.Done())
	e.wg.Add(3)
	go func() { defer e.wg.Done(); e.sub.run(runCtx) }()
	go func() { defer e.wg.Done(); e.heartbeatLoop(runCtx) }()
	go func() { defer e.wg.Done(); e.reapLoop(runCtx) }()
	select {
	case <-e.sub.firstUp:
		return nil
	case <-startCtx.Done():
		e.crash()
		return fmt.Errorf("redisengine: pub/sub did not come up: %w", startCtx.Err())
	}
}

// redactURL keeps a password out of logs and errors.
func redactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		if s := strings.Index(u, "://"); s >= 0 && s < at {
			return u[:s+3] + "***" + u[at:]
		}
	}
	return u
}

// Close implements engine.Engine: the node leaves at once, removing its
// state and record; the transitions that produces go to this node's own
// Local.Orphaned (its hub is still up while the server shuts down).
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		if e.cancel == nil {
			return
		}
		e.cancel()
		e.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), e.o.NodeTimeout)
		defer cancel()
		if _, err := e.reap(ctx, e.NodeID(), true); err != nil {
			e.closeErr = fmt.Errorf("redisengine: leave: %w", err)
		}
		// Ids this process held before it was fenced: normally reaped by
		// now, but if this was the last node nobody else would.
		for id := range *e.ownIDs.Load() {
			if id != e.NodeID() {
				_, _ = e.reap(ctx, id, true)
			}
		}
		e.client.Close()
	})
	return e.closeErr
}

// crash stops the node as kill -9 would: no leave, no cleanup (tests).
func (e *Engine) crash() {
	e.closeOnce.Do(func() {
		if e.cancel != nil {
			e.cancel()
		}
		e.client.Close()
		e.wg.Wait()
	})
}

// exec runs a state script, counting it and turning a refusal for a
// missing node record into errFenced (and an immediate heartbeat, which
// fences the node).
func (e *Engine) exec(ctx context.Context, op string, s *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	res := s.Exec(ctx, e.client, keys, args)
	err := res.Error()
	e.metrics.StoreOp(op, err)
	if err != nil && strings.HasPrefix(err.Error(), "SBFENCED") {
		select {
		case e.checkHB <- struct{}{}:
		default:
		}
		return rueidis.NewErrorResult(errFenced)
	}
	return res
}

func (e *Engine) do(ctx context.Context, op string, cmd rueidis.Completed) rueidis.RedisResult {
	res := e.client.Do(ctx, cmd)
	if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
		e.metrics.StoreOp(op, err)
	} else {
		e.metrics.StoreOp(op, nil)
	}
	return res
}
