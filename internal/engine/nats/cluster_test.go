package natsengine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

const (
	testHeartbeat   = 200 * time.Millisecond
	testNodeTimeout = 2 * time.Second
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// freeAddrs picks n free loopback ports for route listeners (the list must
// be known before any node starts, as in a real deployment).
func freeAddrs(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// pending is a started cluster waiting for its test.
type pending struct {
	engines []*Engine
	fwd     []*forwardLocal
}

// startCluster starts one engine per node with opts(i), each on a
// forwarding hub, and waits until all are ready.
func startCluster(n int, opts func(i int) Options) (*pending, error) {
	p := &pending{}
	for i := range n {
		e, err := New(opts(i))
		if err == nil {
			fwd := &forwardLocal{}
			err = e.Start(context.Background(), fwd)
			p.fwd = append(p.fwd, fwd)
		}
		if err != nil {
			p.close()
			return nil, err
		}
		p.engines = append(p.engines, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, e := range p.engines {
		if err := e.WaitReady(ctx); err != nil {
			p.close()
			return nil, fmt.Errorf("node %d not ready: %w", i, err)
		}
	}
	return p, nil
}

// close leaves all at once, then stops all: one by one, the last nodes
// would lose the stream leader or their quorum and spend their Close
// timeout on a store that cannot answer.
func (p *pending) close() {
	var wg sync.WaitGroup
	for _, e := range p.engines {
		wg.Go(e.leave)
	}
	wg.Wait()
	for _, e := range p.engines {
		wg.Go(func() { _ = e.Close() })
	}
	wg.Wait()
}

// forwardLocal lets a cluster start before its test's recorder exists.
type forwardLocal struct {
	to atomic.Pointer[engine.Local]
}

func (f *forwardLocal) set(l engine.Local) { f.to.Store(&l) }

func (f *forwardLocal) r() engine.Local {
	if r := f.to.Load(); r != nil {
		return *r
	}
	return nopLocal{}
}
func (f *forwardLocal) DeliverLocal(p engine.Publication) { f.r().DeliverLocal(p) }
func (f *forwardLocal) TerminateLocal(ns, u string) int   { return f.r().TerminateLocal(ns, u) }
func (f *forwardLocal) KickLocal(ns, c, k string) bool    { return f.r().KickLocal(ns, c, k) }
func (f *forwardLocal) Orphaned(o engine.Orphan)          { f.r().Orphaned(o) }
func (f *forwardLocal) Fenced()                           { f.r().Fenced() }

type nopLocal struct{}

func (nopLocal) DeliverLocal(engine.Publication)       {}
func (nopLocal) TerminateLocal(string, string) int     { return 0 }
func (nopLocal) KickLocal(string, string, string) bool { return false }
func (nopLocal) Orphaned(engine.Orphan)                {}
func (nopLocal) Fenced()                               {}

// prefetchFactory builds clusters two ahead: forming an embedded
// JetStream cluster is mostly waiting for its first leader election
// (3-8 s here), so the next tests' clusters form while this one runs.
func prefetchFactory(parent *testing.T, n int, newOpts func() (func(i int) Options, error)) enginetest.Factory {
	type result struct {
		p   *pending
		err error
	}
	const ahead = 2
	next := make(chan result, ahead)
	start := func() {
		go func() {
			p, err := startFresh(n, newOpts)
			next <- result{p, err}
		}()
	}
	for range ahead {
		start()
	}
	parent.Cleanup(func() {
		for range ahead {
			if r := <-next; r.p != nil {
				r.p.close()
			}
		}
	})
	return func(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
		r := <-next
		start()
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.p.cluster(t, locals)
	}
}

// cluster hands p to a test: its hubs become locals, it closes with t.
func (p *pending) cluster(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
	t.Cleanup(p.close)
	c := &enginetest.Cluster{Locals: locals, Crash: func(i int) { p.engines[i].crash() }}
	for i, e := range p.engines {
		p.fwd[i].set(locals[i])
		c.Engines = append(c.Engines, e)
	}
	return c
}

// embeddedOptions: three embedded servers routed on loopback ports picked
// before any starts, each with its own store dir.
func embeddedOptions(parent *testing.T) func() (func(i int) Options, error) {
	return func() (func(i int) Options, error) {
		addrs, err := freeAddrs(3)
		if err != nil {
			return nil, err
		}
		return func(i int) Options {
			return Options{
				NodeName: fmt.Sprintf("node%d", i), Embedded: true, Listen: addrs[i], Routes: addrs,
				StoreDir: storeDir(parent), Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger(),
			}
		}, nil
	}
}

// startEmbeddedCluster starts three embedded nodes for one test.
func startEmbeddedCluster(t *testing.T) *pending {
	t.Helper()
	p, err := startFresh(3, embeddedOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startFresh starts a cluster on options from newOpts, and again on new
// ones (new ports) if it fails: the route ports freeAddrs picked are free
// only until someone binds them, and with clusters forming in parallel
// (prefetchFactory, parallel tests, other packages) an embedded server's
// random client port once took one, so a node never became ready.
func startFresh(n int, newOpts func() (func(i int) Options, error)) (*pending, error) {
	var err error
	for range 3 {
		var opts func(i int) Options
		if opts, err = newOpts(); err != nil {
			continue
		}
		var p *pending
		if p, err = startCluster(n, opts); err == nil {
			return p, nil
		}
	}
	return nil, err
}

func threeRecorders() []*enginetest.Recorder {
	return []*enginetest.Recorder{enginetest.NewRecorder(), enginetest.NewRecorder(), enginetest.NewRecorder()}
}

// externalServer runs a plain nats-server (from the Go module) with
// JetStream on a loopback port, as an operator's NATS would be.
func externalServer(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: storeDir(t), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

func TestContractEmbedded(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, prefetchFactory(t, 3, embeddedOptions(t)), enginetest.Options{Nodes: 3, Routed: true, NodeTimeout: testNodeTimeout})
}

func TestContractExternal(t *testing.T) {
	t.Parallel()
	url := externalServer(t)
	// No prefetching here: every engine on one server is one cluster, and
	// a waiting cluster's nodes would take part in the running test's
	// reaping.
	enginetest.Run(t, func(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
		p, err := startCluster(len(locals), func(i int) Options {
			return Options{NodeName: fmt.Sprintf("ext%d", i), URLs: []string{url}, Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger()}
		})
		if err != nil {
			t.Fatal(err)
		}
		return p.cluster(t, locals)
	}, enginetest.Options{Nodes: 3, Routed: true, NodeTimeout: testNodeTimeout})
}

var _ engine.Engine = (*Engine)(nil)

// TestKVContract runs engine.KV's contract on three embedded nodes (real
// time: the server expires values).
func TestKVContract(t *testing.T) {
	t.Parallel()
	c := startEmbeddedCluster(t).cluster(t, threeRecorders())
	kvs := make([]engine.KV, len(c.Engines))
	for i, e := range c.Engines {
		kvs[i] = e.(engine.KV)
	}
	enginetest.RunKV(t, kvs, nil)
}

// storeDir is a JetStream store directory removed when t ends. Not
// t.TempDir: a crashed node's server (Crash skips the clean shutdown) may
// still be writing when the test's cleanups run, and t.TempDir fails the
// test on a directory that is not empty yet.
func storeDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "natsengine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 20 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the crashed server's last writes
		}
	})
	return dir
}
