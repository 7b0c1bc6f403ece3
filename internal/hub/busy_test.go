package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// gate is a subscriber whose first delivery blocks until open is closed:
// it keeps a fan-out running for as long as a test needs the channel busy.
type gate struct {
	sink
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) Deliver(m *transport.Message) {
	g.once.Do(func() {
		close(g.entered)
		<-g.open
	})
	g.sink.Deliver(m)
}

// batchSink records each call: one string per Deliver, and the payloads of
// a DeliverBatch joined by "+", with "*" after a payload marked Queue.
type batchSink struct {
	mu    sync.Mutex
	calls []string
}

func (s *batchSink) record(ms []*transport.Message) {
	var parts []string
	for _, m := range ms {
		p := string(m.Payload)
		if m.Queued() {
			p += "*"
		}
		parts = append(parts, p)
	}
	s.mu.Lock()
	s.calls = append(s.calls, strings.Join(parts, "+"))
	s.mu.Unlock()
}
func (s *batchSink) Deliver(m *transport.Message)         { s.record([]*transport.Message{m}) }
func (s *batchSink) DeliverBatch(ms []*transport.Message) { s.record(ms) }
func (s *batchSink) Terminate()                           {}
func (s *batchSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// queuedSink records into a batchSink, but takes broadcasts one by one
// (it has no DeliverBatch).
type queuedSink struct{ rec *batchSink }

func newQueuedSink() queuedSink { return queuedSink{&batchSink{}} }

func (s queuedSink) Deliver(m *transport.Message) { s.rec.record([]*transport.Message{m}) }
func (s queuedSink) got() []string                { return s.rec.got() }
func (s queuedSink) Terminate()                   {}

var _ Subscriber = queuedSink{}

var _ BatchSubscriber = (*batchSink)(nil)

func publish(h *Hub, payload, exclude string) {
	h.DeliverLocal(engine.Publication{Namespace: "app", Channel: "ch", Payload: []byte(payload), ExcludeConn: exclude})
}

// busyChannel subscribes g first, then the others, and starts a broadcast
// "m0" that g holds up; it returns once the fan-out is running.
func busyChannel(t *testing.T, h *Hub, g *gate, others map[string]Subscriber) (done chan struct{}) {
	t.Helper()
	ctx := context.Background()
	h.Connect("app", "gate", g)
	if _, err := h.Subscribe(ctx, "app", "ch", g); err != nil {
		t.Fatal(err)
	}
	for key, s := range others {
		h.Connect("app", key, s)
		if _, err := h.Subscribe(ctx, "app", "ch", s); err != nil {
			t.Fatal(err)
		}
	}
	done = make(chan struct{})
	go func() { publish(h, "m0", ""); close(done) }()
	<-g.entered
	return done
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBroadcastsWaitingInABusyChannelGoOutInOnePass: broadcasts published
// while another one's fan-out runs return at once, and reach each
// recipient after it, together (one DeliverBatch, in publish order, each
// recipient's excluded one left out); a subscriber that takes broadcasts
// one by one gets them one by one, marked Queue for its writer.
func TestBroadcastsWaitingInABusyChannelGoOutInOnePass(t *testing.T) {
	h := newHub(t)
	g, b, q := newGate(), &batchSink{}, newQueuedSink()
	first := busyChannel(t, h, g, map[string]Subscriber{"b": b, "q": q})

	publish(h, "m1", "")
	publish(h, "m2", "b")
	publish(h, "m3", "q")
	select {
	case <-first:
		t.Fatal("the first broadcast finished while its fan-out was held up")
	default:
	}
	if got := b.got(); len(got) > 1 {
		t.Fatalf("waiting broadcasts were delivered during the first one's fan-out: %v", got)
	}
	close(g.open)
	<-first
	waitFor(t, "the waiting broadcasts", func() bool { return len(b.got()) == 2 && len(q.got()) == 3 })

	if got, want := b.got(), []string{"m0", "m1*+m3*"}; !slices.Equal(got, want) {
		t.Fatalf("batch subscriber got %q, want %q", got, want)
	}
	if got, want := q.got(), []string{"m0", "m1*", "m2*"}; !slices.Equal(got, want) {
		t.Fatalf("one-by-one subscriber got %q, want %q", got, want)
	}
	if got, want := g.messages(), []string{"m0", "m1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("gate got %q, want %q", got, want)
	}
}

// TestAWaitingBroadcastKeepsItsRecipients: a broadcast waiting in a busy
// channel reaches the subscribers of the moment it was published: not one
// who subscribed after it (a presence member_added for a member already
// in its subscription's list, say), but one who unsubscribed after it.
// Broadcasts on either side of the change still reach the right ones.
func TestAWaitingBroadcastKeepsItsRecipients(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	g, leaver, late := newGate(), &batchSink{}, &batchSink{}
	first := busyChannel(t, h, g, map[string]Subscriber{"leaver": leaver})

	publish(h, "before", "")
	if _, err := h.Subscribe(ctx, "app", "ch", late); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Unsubscribe(ctx, "app", "ch", leaver); err != nil {
		t.Fatal(err)
	}
	publish(h, "after", "")
	close(g.open)
	<-first
	waitFor(t, "the waiting broadcasts", func() bool { return len(g.messages()) == 3 })

	if got, want := leaver.got(), []string{"m0", "before"}; !slices.Equal(got, want) {
		t.Fatalf("the subscriber who left got %q, want %q", got, want)
	}
	if got, want := late.got(), []string{"after"}; !slices.Equal(got, want) {
		t.Fatalf("the late subscriber got %q, want %q", got, want)
	}
	if got, want := g.messages(), []string{"m0", "before", "after"}; !slices.Equal(got, want) {
		t.Fatalf("gate got %q, want %q", got, want)
	}
}

// TestAFullChannelQueueHoldsThePublisher: past maxWaiting broadcasts, a
// publisher waits until the running pass has taken the queue, and nothing
// is lost.
func TestAFullChannelQueueHoldsThePublisher(t *testing.T) {
	h := newHub(t)
	g, b := newGate(), &batchSink{}
	first := busyChannel(t, h, g, map[string]Subscriber{"b": b})
	for i := range maxWaiting {
		publish(h, fmt.Sprint("w", i), "")
	}
	held := make(chan struct{})
	go func() { publish(h, "over", ""); close(held) }()
	select {
	case <-held:
		t.Fatal("a publisher to a full channel queue returned at once")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.open)
	<-first
	<-held
	waitFor(t, "every broadcast", func() bool { return len(g.messages()) == maxWaiting+2 })
	var got []string
	for _, c := range b.got() {
		got = append(got, strings.Split(strings.ReplaceAll(c, "*", ""), "+")...)
	}
	want := []string{"m0"}
	for i := range maxWaiting {
		want = append(want, fmt.Sprint("w", i))
	}
	want = append(want, "over")
	if !slices.Equal(got, want) {
		t.Fatalf("got %d broadcasts %q..., want %d in order", len(got), got[:min(len(got), 4)], len(want))
	}
	if n := len(b.got()); n != 3 {
		t.Fatalf("%d deliveries to the batch subscriber (%q), want 3: the first, the full queue, the one that waited", n, b.got())
	}
}

// TestConcurrentPublishersKeepTheirOrder: several goroutines publish their
// own sequences at once to a channel; every subscriber gets every
// broadcast exactly once, each publisher's in its order.
func TestConcurrentPublishersKeepTheirOrder(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	const publishers, each, subs = 4, 300, 3 * fanoutChunk
	var sinks []*batchSink
	for i := range subs {
		var s Subscriber
		if i%2 == 0 {
			bs := &batchSink{}
			sinks = append(sinks, bs)
			s = bs
		} else {
			qs := newQueuedSink()
			sinks = append(sinks, qs.rec)
			s = qs
		}
		if _, err := h.Subscribe(ctx, "app", "ch", s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				publish(h, fmt.Sprintf("p%d-%d", p, i), "")
			}
		}()
	}
	wg.Wait()
	for i, s := range sinks {
		waitFor(t, "every broadcast", func() bool {
			n := 0
			for _, c := range s.got() {
				n += strings.Count(c, "+") + 1
			}
			return n >= publishers*each
		})
		next := make([]int, publishers)
		for _, c := range s.got() {
			for _, p := range strings.Split(strings.ReplaceAll(c, "*", ""), "+") {
				var pub, seq int
				if _, err := fmt.Sscanf(p, "p%d-%d", &pub, &seq); err != nil {
					t.Fatal(err)
				}
				if seq != next[pub] {
					t.Fatalf("subscriber %d: publisher %d's %d arrived when %d was due", i, pub, seq, next[pub])
				}
				next[pub]++
			}
		}
	}
}

// TestASubscriberExcludedFromAWholePassHearsNothing: when every broadcast
// of a pass excludes one subscriber (its own client events, say), it gets
// no delivery at all, not an empty batch.
func TestASubscriberExcludedFromAWholePassHearsNothing(t *testing.T) {
	h := newHub(t)
	g, sender := newGate(), &batchSink{}
	first := busyChannel(t, h, g, map[string]Subscriber{"sender": sender})
	publish(h, "e1", "sender")
	publish(h, "e2", "sender")
	close(g.open)
	<-first
	waitFor(t, "the waiting broadcasts", func() bool { return len(g.messages()) == 3 })
	if got, want := sender.got(), []string{"m0"}; !slices.Equal(got, want) {
		t.Fatalf("the excluded subscriber got %q, want only %q", got, want)
	}
}

// TestASubscriberBackInAVacatedBusyChannelKeepsTheOrder: every subscriber
// leaves a channel while a fan-out runs in it and broadcasts wait, and one
// comes back. A broadcast published then goes out after the older ones,
// not ahead of them through a new channel.
func TestASubscriberBackInAVacatedBusyChannelKeepsTheOrder(t *testing.T) {
	h := newHub(t)
	g, a, first := vacatedBusyChannel(t, h)
	if n, err := h.Subscribe(context.Background(), "app", "ch", a); n != 1 || err != nil {
		t.Fatalf("subscribe again: %d %v", n, err)
	}
	publish(h, "m2", "")
	close(g.open)
	<-first
	waitFor(t, "three broadcasts", func() bool { return len(a.got()) == 3 })
	if got, want := a.got(), []string{"m0", "m1", "m2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !hasChannel(h, "ch") {
		t.Fatal("the channel went while it had a subscriber")
	}
}

// TestAChannelVacatedWhileBusyGoesWhenItsFanOutEnds: a channel left by
// every subscriber during a fan-out stays until that fan-out (and what
// waited behind it) is out, then goes.
func TestAChannelVacatedWhileBusyGoesWhenItsFanOutEnds(t *testing.T) {
	h := newHub(t)
	g, a, first := vacatedBusyChannel(t, h)
	if !hasChannel(h, "ch") {
		t.Fatal("the channel went while its fan-out ran")
	}
	for _, snap := range h.Inspect(10) {
		if len(snap.Channels) != 0 {
			t.Fatalf("a vacated channel is listed: %+v", snap.Channels)
		}
	}
	close(g.open)
	<-first
	waitFor(t, "the vacated channel to go", func() bool { return !hasChannel(h, "ch") })
	if got, want := a.got(), []string{"m0", "m1"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q (broadcasts published before it left)", got, want)
	}
}

// vacatedBusyChannel makes "ch" busy with m0 held up by g, queues m1
// behind it, and unsubscribes g and a, the channel's only subscribers.
func vacatedBusyChannel(t *testing.T, h *Hub) (g *gate, a *batchSink, first chan struct{}) {
	t.Helper()
	g, a = newGate(), &batchSink{}
	first = busyChannel(t, h, g, map[string]Subscriber{"a": a})
	publish(h, "m1", "")
	for _, s := range []Subscriber{g, a} {
		if _, ok, err := h.Unsubscribe(context.Background(), "app", "ch", s); !ok || err != nil {
			t.Fatalf("unsubscribe: %v %v", ok, err)
		}
	}
	return g, a, first
}

func hasChannel(h *Hub, name string) bool {
	sp := h.space("app", false)
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	_, ok := sp.channels[name]
	return ok
}
