package natsengine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Engine is the NATS cluster engine. Build it with New, then Start it.
type Engine struct {
	o   Options
	n   names
	log *slog.Logger
	obs Observer

	srv    *server.Server // embedded mode only
	data   *nats.Conn     // publications and control; NoEcho drops our own
	jsConn *nats.Conn     // JetStream
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	cache  jetstream.Stream

	local  engine.Local
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ready   atomic.Bool
	readyCh chan struct{}
	closed  atomic.Bool
	left    atomic.Bool

	mu      sync.Mutex // guards the fields below
	nodeID  string
	nodeRev uint64
	nodeSub *nats.Subscription
	subs    map[string]*interest // data subject -> local interest
	occ     map[string]*occState // state key -> this node's count
	pres    map[string]map[string]map[string]struct{}
	users   map[string]map[string]struct{}

	stripes [256]sync.Mutex // one write in flight per key per node

	hb heartbeatState
	// pause is a test hook: while set, heartbeats are skipped, as if the
	// process were stopped.
	pause atomic.Bool
	// busy: a flush-and-reap pass is running.
	busy atomic.Bool
}

type interest struct {
	n   int
	sub *nats.Subscription
}

var _ engine.Engine = (*Engine)(nil)

// New validates o and returns an engine that is not yet connected.
func New(o Options) (*Engine, error) {
	o = o.withDefaults()
	if !o.Embedded && len(o.URLs) == 0 {
		return nil, errors.New("natsengine: external mode needs URLs")
	}
	if o.Embedded && o.StoreDir == "" {
		return nil, errors.New("natsengine: embedded mode needs StoreDir")
	}
	e := &Engine{o: o, n: newNames(o.Name), log: o.Logger.With("engine", "nats", "node", o.NodeName), obs: o.Observer, readyCh: make(chan struct{})}
	e.resetLocal(newNodeID())
	return e, nil
}

func newNodeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// resetLocal starts this node's bookkeeping afresh under id: at start, and
// after fencing (the old state is gone from the store and must never be
// written back).
func (e *Engine) resetLocal(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodeID = id
	e.nodeRev = 0
	if e.subs == nil {
		e.subs = map[string]*interest{}
	}
	e.occ = map[string]*occState{}
	e.pres = map[string]map[string]map[string]struct{}{}
	e.users = map[string]map[string]struct{}{}
}

// Start connects (starting the embedded server first in embedded mode) and
// joins the cluster in the background; Ready turns true once the store is
// usable and this node is registered. Deliveries go to local until ctx ends.
func (e *Engine) Start(ctx context.Context, local engine.Local) error {
	e.local = local
	e.ctx, e.cancel = context.WithCancel(ctx)
	opts := []nats.Option{
		nats.Name("switchboard-" + e.o.NodeName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A 2 s ping notices a wedged connection quickly (centrifugo#1189).
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			e.log.Warn("nats async error", "subject", subjectOf(s), "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { e.log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { e.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	}
	url := strings.Join(e.o.URLs, ",")
	if e.o.Embedded {
		token := newNodeID() + newNodeID()
		srv, err := startEmbedded(e.o, token)
		if err != nil {
			return err
		}
		e.srv = srv
		url = ""
		opts = append(opts, nats.InProcessServer(srv), nats.Token(token))
	}
	var err error
	if e.data, err = nats.Connect(url, append(opts, nats.NoEcho())...); err != nil {
		e.shutdownServer()
		return fmt.Errorf("natsengine: connect: %w", err)
	}
	if e.jsConn, err = nats.Connect(url, opts...); err != nil {
		e.data.Close()
		e.shutdownServer()
		return fmt.Errorf("natsengine: connect: %w", err)
	}
	if e.js, err = jetstream.New(e.jsConn); err != nil {
		return err
	}
	if _, err := e.data.Subscribe(e.n.ctl, e.onControl); err != nil {
		return err
	}
	if _, err := e.data.Subscribe(e.n.ping, e.onPing); err != nil {
		return err
	}
	e.wg.Add(1)
	go e.join()
	return nil
}

func subjectOf(s *nats.Subscription) string {
	if s == nil {
		return ""
	}
	return s.Subject
}

// WaitReady blocks until the engine is Ready or ctx ends.
func (e *Engine) WaitReady(ctx context.Context) error {
	select {
	case <-e.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready implements engine.Engine.
func (e *Engine) Ready() bool { return e.ready.Load() && !e.closed.Load() }

// NodeID implements engine.Engine.
func (e *Engine) NodeID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nodeID
}

// join creates the streams (retrying until JetStream has a meta leader),
// registers the node and runs the heartbeat and reaper loops.
func (e *Engine) join() {
	defer e.wg.Done()
	// Until JetStream has a meta leader, API requests get no answer at
	// all: short attempts (growing to 5 s for a slow stream creation)
	// notice the leader soon after it is elected.
	for attempt := time.Second; ; attempt = min(2*attempt, 5*time.Second) {
		ctx, cancel := context.WithTimeout(e.ctx, attempt)
		err := e.ensureStreams(ctx)
		if err == nil {
			err = e.register(ctx)
		}
		cancel()
		if err == nil {
			break
		}
		if e.ctx.Err() != nil {
			return
		}
		e.log.Info("waiting for the JetStream store", "err", err)
		select {
		case <-e.ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	e.awaitRoutes()
	watchReady := make(chan struct{})
	e.wg.Add(2)
	go e.watchNodes(watchReady)
	go e.heartbeatLoop()
	select {
	case <-watchReady:
	case <-e.ctx.Done():
		return
	}
	e.ready.Store(true)
	close(e.readyCh)
	e.log.Info("joined the cluster", "node_id", e.NodeID())
}

// awaitRoutes waits (up to NodeTimeout) until the embedded server has a
// route to every configured peer. JetStream is usable with a majority, but
// core NATS forwards a message only over a direct route: a node that is
// Ready before its mesh is complete would miss publications from the
// peers it is not yet routed to.
func (e *Engine) awaitRoutes() {
	if e.srv == nil {
		return
	}
	want := len(peerRoutes(e.o.Listen, e.o.Routes))
	deadline := time.Now().Add(e.o.NodeTimeout)
	for e.srv.NumRemotes() < want && time.Now().Before(deadline) && e.ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.srv.NumRemotes(); n < want {
		e.log.Warn("ready without a route to every peer", "routes", n, "peers", want)
	}
}

// Publish implements engine.Engine: local subscribers first, then every
// other node with interest (NATS routes the message only where a node
// subscribed; our own copy is dropped by NoEcho).
func (e *Engine) Publish(_ context.Context, p engine.Publication) error {
	subj := e.n.dataSubject(p.Namespace, p.Channel)
	e.mu.Lock()
	in := e.subs[subj]
	here := in != nil && in.n > 0
	origin := e.nodeID
	e.mu.Unlock()
	if here {
		e.local.DeliverLocal(p)
	}
	env := envelope{Kind: kindPublish, Binary: p.Binary, Origin: origin, Namespace: p.Namespace, Channel: p.Channel, Conn: p.ExcludeConn, Payload: p.Payload}
	if err := e.data.Publish(subj, appendEnvelope(make([]byte, 0, envelopeSize(&env)), &env)); err != nil {
		return fmt.Errorf("natsengine: publish: %w", err)
	}
	e.obs.BrokerPublish()
	return nil
}

// Interest implements engine.Engine. The hub calls it on a channel's first
// and last local subscriber; the count here keeps it correct if it is
// called more often. Subscribing flushes, so the server has the
// subscription when Interest returns.
func (e *Engine) Interest(ctx context.Context, ns, channel string, on bool) error {
	subj := e.n.dataSubject(ns, channel)
	lk := e.stripe(subj)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	in := e.subs[subj]
	if on {
		if in == nil {
			in = &interest{}
			e.subs[subj] = in
		}
		in.n++
		first := in.n == 1
		e.mu.Unlock()
		if !first {
			return nil
		}
		sub, err := e.data.Subscribe(subj, e.onData)
		if err != nil {
			// Only a closed connection fails here; the engine is done.
			e.mu.Lock()
			delete(e.subs, subj)
			e.mu.Unlock()
			return fmt.Errorf("natsengine: subscribe: %w", err)
		}
		e.mu.Lock()
		in.sub = sub
		e.mu.Unlock()
		// nats.go refuses to flush on a context without a deadline, and
		// the caller's may have none (a Pusher session's lasts as long as
		// its connection): until this bound was added, every Pusher
		// subscribe skipped the flush and the barrier below, and a
		// publish on another node right after subscription_succeeded
		// could be lost (seen in CI).
		fctx, cancel := context.WithTimeout(ctx, interestFlushTimeout)
		defer cancel()
		// While reconnecting the flush fails, but nats.go replays the
		// subscription on reconnect: nothing to retry here.
		if err := e.data.FlushWithContext(fctx); err != nil {
			e.log.Debug("interest flush", "subject", subj, "err", err)
			return nil
		}
		e.interestBarrier(fctx)
		return nil
	}
	if in == nil {
		e.mu.Unlock()
		return nil
	}
	in.n--
	if in.n > 0 {
		e.mu.Unlock()
		return nil
	}
	delete(e.subs, subj)
	sub := in.sub
	e.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	return nil
}

func (e *Engine) onData(m *nats.Msg) {
	var env envelope
	if err := decodeEnvelope(m.Data, &env); err != nil || env.Kind != kindPublish {
		e.log.Warn("dropped a malformed message", "subject", m.Subject)
		return
	}
	e.local.DeliverLocal(engine.Publication{Namespace: env.Namespace, Channel: env.Channel, Payload: env.Payload, Binary: env.Binary, ExcludeConn: env.Conn})
}

// onControl handles terminate broadcasts (sb.ctl) and kicks addressed to
// this node (sb.node.<id>).
func (e *Engine) onControl(m *nats.Msg) {
	var env envelope
	if err := decodeEnvelope(m.Data, &env); err != nil {
		e.log.Warn("dropped a malformed control message", "subject", m.Subject)
		return
	}
	switch env.Kind {
	case kindTerminate:
		e.local.TerminateLocal(env.Namespace, env.Channel)
	case kindKick:
		e.local.KickLocal(env.Namespace, env.Conn, env.Channel)
	}
}

// TerminateUser implements engine.Users: this node directly, the others
// through one broadcast.
func (e *Engine) TerminateUser(_ context.Context, ns, userID string) error {
	e.local.TerminateLocal(ns, userID)
	env := envelope{Kind: kindTerminate, Origin: e.NodeID(), Namespace: ns, Channel: userID}
	if err := e.data.Publish(e.n.ctl, appendEnvelope(nil, &env)); err != nil {
		return fmt.Errorf("natsengine: terminate: %w", err)
	}
	e.obs.BrokerPublish()
	return nil
}

// Close implements engine.Engine: a graceful leave. The node removes its
// own contributions (emitting their transitions here, as a reaper would)
// and its record, so the cluster sees it gone at once.
func (e *Engine) Close() error {
	e.leave()
	if e.closed.Swap(true) {
		return nil
	}
	e.stop()
	return nil
}

// leave removes this node's state and record from the store (once).
func (e *Engine) leave() {
	if !e.ready.Load() || e.left.Swap(true) || e.closed.Load() {
		return
	}
	e.pause.Store(true) // no beat may recreate what we remove
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := e.NodeID()
	e.reapNode(ctx, id, true)
	if err := e.kv.Delete(ctx, nodeKey(id)); err != nil {
		e.log.Warn("leaving: node record not removed", "err", err)
	}
}

// stop ends the loops and connections without touching the store.
func (e *Engine) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	if e.data != nil {
		e.data.Close()
	}
	if e.jsConn != nil {
		e.jsConn.Close()
	}
	e.wg.Wait()
	e.shutdownServer()
}

func (e *Engine) shutdownServer() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
}

// stripe is the lock that serializes this node's work on one key.
func (e *Engine) stripe(key string) *sync.Mutex {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &e.stripes[h%uint32(len(e.stripes))]
}

// tok makes any string one subject/key token: base64url has no dots,
// wildcards or spaces, and "=" stands for the empty string.
func tok(s string) string {
	if s == "" {
		return "="
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func untok(t string) (string, bool) {
	if t == "=" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err == nil
}

// crash ends the node as kill -9 would: loops, connections and the
// embedded server stop, and nothing is removed from the store. For tests.
func (e *Engine) crash() {
	e.closed.Store(true)
	e.stop()
}
