package enginetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// RunKV runs the engine.KV contract: kvs[i] is node i's view of one
// cluster. advance moves the engines' clock (nil: real time passes).
func RunKV(t *testing.T, kvs []engine.KV, advance func(time.Duration)) {
	ns := uniqueNamespace(t)
	first, last := kvs[0], kvs[len(kvs)-1]
	pass := func(d time.Duration) {
		if advance != nil {
			advance(d)
		} else {
			time.Sleep(d)
		}
	}

	t.Run("TakeIsSingleUse", func(t *testing.T) {
		if err := first.KVSet(ctx(t), ns, "ticket", []byte("alias-7"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for i := range 10 {
			kv := kvs[i%len(kvs)]
			wg.Go(func() {
				v, ok, err := kv.KVTake(ctx(t), ns, "ticket")
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					winners++
					mu.Unlock()
					if string(v) != "alias-7" {
						t.Errorf("took %q", v)
					}
				}
			})
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("10 concurrent takes of one ticket: %d succeeded", winners)
		}
		if _, ok, _ := last.KVGet(ctx(t), ns, "ticket"); ok {
			t.Fatal("a taken ticket is still readable")
		}
	})

	t.Run("SetNXOnce", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		set := 0
		for i := range 10 {
			kv := kvs[i%len(kvs)]
			wg.Go(func() {
				ok, err := kv.KVSetNX(ctx(t), ns, "nonce", []byte(fmt.Sprint(i)), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					set++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if set != 1 {
			t.Fatalf("SetNX succeeded %d times", set)
		}
	})

	t.Run("ExpiryAndIncr", func(t *testing.T) {
		ttl := time.Second
		if err := first.KVSet(ctx(t), ns, "token", []byte("v1"), ttl); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := last.KVGet(ctx(t), ns, "token"); err != nil || !ok || string(v) != "v1" {
			t.Fatalf("get on another node = %q %v %v", v, ok, err)
		}
		for i := range 3 {
			n, err := kvs[i%len(kvs)].KVIncr(ctx(t), ns, "hits", ttl)
			if err != nil || n != int64(i+1) {
				t.Fatalf("incr %d = %d %v", i, n, err)
			}
		}
		if v, ok, _ := first.KVGet(ctx(t), ns, "hits"); !ok || string(v) != "3" {
			t.Fatalf("a counter reads %q %v, want \"3\"", v, ok)
		}
		pass(ttl + 200*time.Millisecond)
		if _, ok, _ := last.KVGet(ctx(t), ns, "token"); ok {
			t.Fatal("a value outlived its ttl")
		}
		if _, ok, _ := last.KVTake(ctx(t), ns, "token"); ok {
			t.Fatal("an expired value was taken")
		}
		if n, _ := first.KVIncr(ctx(t), ns, "hits", ttl); n != 1 {
			t.Fatalf("a counter's window did not end: %d", n)
		}
		if ok, _ := first.KVSetNX(ctx(t), ns, "token", []byte("v2"), ttl); !ok {
			t.Fatal("SetNX over an expired value failed")
		}
		if err := first.KVDelete(ctx(t), ns, "token"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := last.KVGet(ctx(t), ns, "token"); ok {
			t.Fatal("a deleted value is readable")
		}
	})
}
