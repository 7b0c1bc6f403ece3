package natsengine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
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
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// startCluster starts one engine per local with opts(i) and waits until
// all are ready.
func startCluster(t *testing.T, locals []*enginetest.Recorder, opts func(i int) Options) *enginetest.Cluster {
	t.Helper()
	engines := make([]*Engine, len(locals))
	for i := range locals {
		e, err := New(opts(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background(), locals[i]); err != nil {
			t.Fatal(err)
		}
		engines[i] = e
	}
	// Leave all at once: one by one, the last node would lose its JetStream
	// quorum and spend its whole Close timeout on a store that cannot answer.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, e := range engines {
			wg.Go(func() { _ = e.Close() })
		}
		wg.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &enginetest.Cluster{Locals: locals, Crash: func(i int) { engines[i].crash() }}
	for i, e := range engines {
		if err := e.WaitReady(ctx); err != nil {
			t.Fatalf("node %d not ready: %v", i, err)
		}
		c.Engines = append(c.Engines, e)
	}
	return c
}

func embeddedFactory(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
	addrs := freeAddrs(t, len(locals))
	return startCluster(t, locals, func(i int) Options {
		return Options{
			NodeName: fmt.Sprintf("node%d", i), Embedded: true, Listen: addrs[i], Routes: addrs,
			StoreDir: t.TempDir(), Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger(),
		}
	})
}

// externalServer runs a plain nats-server (from the Go module) with
// JetStream on a loopback port, as an operator's NATS would be.
func externalServer(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
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
	enginetest.Run(t, embeddedFactory, enginetest.Options{Nodes: 3, Routed: true, NodeTimeout: testNodeTimeout})
}

func TestContractExternal(t *testing.T) {
	t.Parallel()
	url := externalServer(t)
	enginetest.Run(t, func(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
		return startCluster(t, locals, func(i int) Options {
			return Options{NodeName: fmt.Sprintf("ext%d", i), URLs: []string{url}, Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger()}
		})
	}, enginetest.Options{Nodes: 3, Routed: true, NodeTimeout: testNodeTimeout})
}

var _ engine.Engine = (*Engine)(nil)
