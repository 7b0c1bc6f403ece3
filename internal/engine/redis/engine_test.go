package redisengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

const (
	testHeartbeat   = 200 * time.Millisecond
	testNodeTimeout = 2 * time.Second
)

func testPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + ":"
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startNodes starts n engines on url sharing one fresh prefix, and stops
// them (gracefully, unless crashed) when t ends.
// Each opt may adjust node i's options.
func startNodes(t *testing.T, url string, locals []*enginetest.Recorder, opts ...func(i int, o *Options)) []*Engine {
	t.Helper()
	prefix := testPrefix()
	out := make([]*Engine, len(locals))
	for i, l := range locals {
		o := Options{
			URL:         url,
			NodeName:    fmt.Sprintf("n%d", i),
			Heartbeat:   testHeartbeat,
			NodeTimeout: testNodeTimeout,
			Prefix:      prefix,
			Logger:      testLogger(t),
		}
		for _, f := range opts {
			f(i, &o)
		}
		e := New(o)
		ctx, cancel := context.WithCancel(context.Background())
		if err := e.Start(ctx, l); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Close(); err != nil {
				t.Errorf("close node %d: %v", i, err)
			}
			cancel()
		})
		out[i] = e
	}
	return out
}

// TestContract runs the engine contract on three nodes sharing one Redis.
func TestContract(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
		nodes := startNodes(t, sharedRedis(t).URL(), locals)
		c := &enginetest.Cluster{Locals: locals, Crash: func(i int) { nodes[i].crash() }}
		for _, n := range nodes {
			c.Engines = append(c.Engines, n)
		}
		return c
	}, enginetest.Options{Nodes: 3, Routed: true, NodeTimeout: testNodeTimeout})
}

var _ engine.Engine = (*Engine)(nil)

// TestKVContract runs the short-lived key-value contract across three
// nodes sharing one Redis (real time: Redis keeps the clock).
func TestKVContract(t *testing.T) {
	locals := []*enginetest.Recorder{enginetest.NewRecorder(), enginetest.NewRecorder(), enginetest.NewRecorder()}
	nodes := startNodes(t, sharedRedis(t).URL(), locals)
	kvs := make([]engine.KV, len(nodes))
	for i, n := range nodes {
		kvs[i] = n
	}
	enginetest.RunKV(t, kvs, nil)
}
