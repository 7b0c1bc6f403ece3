package memory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// TestContract runs the engine contract on one node, with the cache's
// clock stepped instead of slept.
func TestContract(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, locals []*enginetest.Recorder) *enginetest.Cluster {
		e := New()
		var mu sync.Mutex
		now := time.Unix(1_700_000_000, 0)
		e.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := e.Start(ctx, locals[0]); err != nil {
			t.Fatal(err)
		}
		return &enginetest.Cluster{
			Engines: []engine.Engine{e},
			Locals:  locals,
			Advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() },
		}
	}, enginetest.Options{Nodes: 1})
}

func TestKVContract(t *testing.T) {
	e := New()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	e.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	enginetest.RunKV(t, []engine.KV{e}, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() })
}
