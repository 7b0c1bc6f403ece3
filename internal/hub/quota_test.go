package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	redisengine "github.com/switchboard-rt/switchboard/internal/engine/redis"
	"github.com/switchboard-rt/switchboard/internal/redistest"
)

func admit(t *testing.T, h *Hub, ns string, max int) bool {
	t.Helper()
	ok, err := h.AdmitConnection(context.Background(), ns, max)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestTheConnectionQuotaAdmitsUpToMax: places are taken up to max, the
// next is refused and takes none, a released place is free again, and
// namespaces count apart.
func TestTheConnectionQuotaAdmitsUpToMax(t *testing.T) {
	h := newHub(t)
	for i := range 2 {
		if !admit(t, h, "app", 2) {
			t.Fatalf("connection %d refused under the quota", i+1)
		}
	}
	for range 3 {
		if admit(t, h, "app", 2) {
			t.Fatal("a third connection admitted with max 2")
		}
	}
	if !admit(t, h, "other", 2) {
		t.Fatal("another namespace is counted with this one")
	}
	if err := h.ReleaseConnection("app"); err != nil {
		t.Fatal(err)
	}
	if !admit(t, h, "app", 2) {
		t.Fatal("a released place was not free again")
	}
}

// TestTheConnectionQuotaHoldsUnderConcurrency: 64 connections arriving at
// once for 10 places: exactly 10 are admitted.
func TestTheConnectionQuotaHoldsUnderConcurrency(t *testing.T) {
	h := newHub(t)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if ok, err := h.AdmitConnection(context.Background(), "app", 10); err == nil && ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 10 {
		t.Fatalf("admitted %d, want 10", n)
	}
}

// TestTheQuotaCountIsNoChannel: the count is not listed as a channel, and
// its emptying on a dead node's reaping reaches no protocol.
func TestTheQuotaCountIsNoChannel(t *testing.T) {
	h := newHub(t)
	admit(t, h, "app", 5)
	chs, err := h.Channels(context.Background(), "app", "")
	if err != nil || len(chs) != 0 {
		t.Fatalf("channels %v %v, want none", chs, err)
	}
	o := &orphanOwner{}
	h.Own("app", o)
	h.Orphaned(engine.Orphan{Kind: engine.OrphanVacated, Namespace: "app", Channel: connectionsChannel})
	h.Orphaned(engine.Orphan{Kind: engine.OrphanVacated, Namespace: "app", Channel: "c"})
	if len(o.got) != 1 || o.got[0].Channel != "c" {
		t.Fatalf("owner heard %+v, want only channel c", o.got)
	}
}

// TestTheConnectionQuotaCountsEveryNode: two nodes on one Redis share an
// app's quota; a node's released place can be taken on the other, and so
// can the places of a node that left (its state reaped, as a dead node's
// is).
func TestTheConnectionQuotaCountsEveryNode(t *testing.T) {
	srv := redistest.Start(t)
	prefix := fmt.Sprintf("tq%d:", time.Now().UnixNano())
	var hubs []*Hub
	var engines []*redisengine.Engine
	for i := range 2 {
		e := redisengine.New(redisengine.Options{URL: srv.URL(), NodeName: fmt.Sprintf("n%d", i), Prefix: prefix})
		h := New(e, nil)
		ctx, cancel := context.WithCancel(context.Background())
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = e.Close()
		})
		hubs = append(hubs, h)
		engines = append(engines, e)
	}
	a, b := hubs[0], hubs[1]
	if !admit(t, a, "app", 2) || !admit(t, b, "app", 2) {
		t.Fatal("refused under the quota")
	}
	if admit(t, a, "app", 2) || admit(t, b, "app", 2) {
		t.Fatal("a third connection admitted across two nodes with max 2")
	}
	if err := a.ReleaseConnection("app"); err != nil {
		t.Fatal(err)
	}
	if !admit(t, b, "app", 2) {
		t.Fatal("a place released on one node was not free on the other")
	}
	// Now b holds both places. b leaves; a gets them back.
	if err := engines[1].Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !admit(t, a, "app", 2) {
			t.Fatalf("a departed node's place %d was not free again", i+1)
		}
	}
}
