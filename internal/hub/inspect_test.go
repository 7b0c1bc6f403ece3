package hub

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

type tapRecorder struct{ got []engine.Publication }

func (r *tapRecorder) Published(p engine.Publication) { r.got = append(r.got, p) }

// The tap hears every publication while set, including one to a channel
// nobody here subscribes to, and nothing after it is removed.
func TestTapHearsPublicationsWhileSet(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	s := &sink{}
	h.Connect("app1", "c1", s)
	_, _ = h.Subscribe(ctx, "app1", "room", s)
	rec := &tapRecorder{}
	h.SetTap(rec)
	_ = h.Publish(ctx, engine.Publication{Namespace: "app1", Channel: "room", Payload: []byte("a")})
	_ = h.Publish(ctx, engine.Publication{Namespace: "app1", Channel: "empty", Payload: []byte("b")})
	h.SetTap(nil)
	_ = h.Publish(ctx, engine.Publication{Namespace: "app1", Channel: "room", Payload: []byte("c")})
	if len(rec.got) != 2 || string(rec.got[0].Payload) != "a" || rec.got[1].Channel != "empty" {
		t.Fatalf("tap got %+v", rec.got)
	}
	if got := s.messages(); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("subscriber got %q", got)
	}
}

// Inspect lists namespaces, channels with counts, and connections with
// their subscriptions, bounded per namespace.
func TestInspectListsConnectionsAndChannels(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	a, b, c := &sink{}, &sink{}, &sink{}
	h.Connect("app1", "a", a)
	h.Connect("app1", "b", b)
	h.Connect("app2", "c", c)
	_, _ = h.Subscribe(ctx, "app1", "x", a)
	_, _ = h.Subscribe(ctx, "app1", "y", a)
	_, _ = h.Subscribe(ctx, "app1", "x", b)
	_, _ = h.Subscribe(ctx, "app2", "x", c)
	got := h.Inspect(10)
	want := []NamespaceSnapshot{
		{Namespace: "app1", Connections: 2,
			Conns:    []ConnSnapshot{{Key: "a", Channels: []string{"x", "y"}}, {Key: "b", Channels: []string{"x"}}},
			Channels: []ChannelSnapshot{{"x", 2}, {"y", 1}}},
		{Namespace: "app2", Connections: 1,
			Conns:    []ConnSnapshot{{Key: "c", Channels: []string{"x"}}},
			Channels: []ChannelSnapshot{{"x", 1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Inspect:\n got %+v\nwant %+v", got, want)
	}
	if got := h.Inspect(1); got[0].Connections != 2 || len(got[0].Conns) != 1 || got[0].Conns[0].Key != "a" {
		t.Fatalf("bounded: %+v", got[0])
	}
}

type nopTap struct{}

func (nopTap) Published(engine.Publication) {}

// What the console's tap adds to a publication: nothing set (the normal
// case) against a tap that returns at once.
//
//	go test -run '^$' -bench PublishTap -benchmem ./internal/hub/
func BenchmarkPublishTap(b *testing.B) {
	for _, tc := range []struct {
		name string
		tap  Tap
	}{{"unset", nil}, {"set", nopTap{}}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHub(b)
			h.SetTap(tc.tap)
			ctx := context.Background()
			s := &sink{}
			h.Connect("app", "c", s)
			_, _ = h.Subscribe(ctx, "app", "room", s)
			p := engine.Publication{Namespace: "app", Channel: "other", Payload: []byte("x")}
			b.ReportAllocs()
			for b.Loop() {
				_ = h.Publish(ctx, p)
			}
		})
	}
}

// Inspect runs beside subscriptions, unsubscriptions and fan-out (for the
// race detector) and always sees a consistent namespace: every listed
// connection's channels exist in the channel list.
func TestInspectBesideTraffic(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	subs := make([]*sink, 8)
	for i := range subs {
		subs[i] = &sink{}
		h.Connect("app", fmt.Sprint(i), subs[i])
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := fmt.Sprint("room-", i%3)
			for {
				select {
				case <-done:
					return
				default:
				}
				_, _ = h.Subscribe(ctx, "app", ch, s)
				_ = h.Publish(ctx, engine.Publication{Namespace: "app", Channel: ch, Payload: []byte("x")})
				_, _, _ = h.Unsubscribe(ctx, "app", ch, s)
			}
		}()
	}
	for range 200 {
		for _, ns := range h.Inspect(4) {
			if ns.Connections != 8 || len(ns.Conns) != 4 {
				t.Fatalf("%+v", ns)
			}
			have := map[string]int{}
			for _, ch := range ns.Channels {
				have[ch.Name] = ch.Local
			}
			for _, c := range ns.Conns {
				for _, ch := range c.Channels {
					if have[ch] < 1 {
						t.Fatalf("%s lists %s, which has %d subscribers", c.Key, ch, have[ch])
					}
				}
			}
		}
	}
	close(done)
	wg.Wait()
}
