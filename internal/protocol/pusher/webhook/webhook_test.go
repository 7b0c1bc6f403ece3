package webhook

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

func TestWireFormatSignatureAndHeaders(t *testing.T) {
	r := newReceiver(t, nil, false)
	tg := &Target{AppID: "app1", Key: "key1", Secret: "s3cret", Hooks: []config.Webhook{{
		URL:     r.srv.URL + "/hook",
		Headers: map[string]string{"X-Custom": "yes", "X-Pusher-Key": "spoofed", "X-Pusher-Signature": "spoofed"},
	}}}
	d := start(t, Options{})
	before := time.Now().UnixMilli()
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-a", Event: "client-typing", Data: `{"x":1}`, SocketID: "123.456"})
	got := r.wait(t, 1)[0]

	if sig, want := got.header.Get("X-Pusher-Signature"), pushersign.HMACHex("s3cret", string(got.body)); sig != want {
		t.Errorf("signature %q, want HMAC of body %q", sig, want)
	}
	for h, want := range map[string]string{
		"X-Pusher-Key": "key1", "Content-Type": "application/json", "X-Custom": "yes", "User-Agent": userAgent,
	} {
		if v := got.header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	if got.p.TimeMs < before || got.p.TimeMs > time.Now().UnixMilli() {
		t.Errorf("time_ms %d not the send time", got.p.TimeMs)
	}
	want := Event{Name: EventClientEvent, Channel: "private-a", Event: "client-typing", Data: `{"x":1}`, SocketID: "123.456"}
	if len(got.p.Events) != 1 || got.p.Events[0] != want {
		t.Errorf("events %+v, want [%+v]", got.p.Events, want)
	}
	// Empty optional fields are left out, as Pusher does.
	if bytes.Contains(got.body, []byte("user_id")) || bytes.Contains(got.body, []byte("subscription_count")) {
		t.Errorf("body has empty optional fields: %s", got.body)
	}
}

func TestBatchingGroupsEvents(t *testing.T) {
	batched := newReceiver(t, nil, false)
	single := newReceiver(t, nil, false)
	// A fake clock: the window cannot close between two Emits however long
	// a loaded machine stalls the test, and closes when the test says so.
	clk := newFakeClock()
	d := start(t, Options{BatchWindow: 100 * time.Millisecond, Now: clk.Now})
	tb := &Target{AppID: "b", Key: "k", Secret: "s", Batching: true, Hooks: []config.Webhook{{URL: batched.srv.URL}}}
	ts := &Target{AppID: "s", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: single.srv.URL}}}
	for i := range 5 {
		ch := string(rune('a' + i))
		d.Emit(tb, Event{Name: EventChannelOccupied, Channel: ch})
		d.Emit(ts, Event{Name: EventChannelOccupied, Channel: ch})
	}
	single.wait(t, 5)
	if n := len(batched.requests()); n != 0 {
		t.Errorf("batched target sent %d requests before its window closed", n)
	}
	clk.Advance(100 * time.Millisecond)
	got := batched.wait(t, 1)
	if len(got) != 1 || !slices.Equal(names(got[0].p.Events), []string{
		"channel_occupied:a", "channel_occupied:b", "channel_occupied:c", "channel_occupied:d", "channel_occupied:e",
	}) {
		t.Errorf("batched target: %d requests, first %v", len(got), names(got[0].p.Events))
	}
	for _, q := range single.wait(t, 5) {
		if len(q.p.Events) != 1 {
			t.Errorf("unbatched target sent %d events in one request", len(q.p.Events))
		}
	}
}

func TestBatchSizeIsCapped(t *testing.T) {
	r := newReceiver(t, nil, false)
	d := New(Options{BatchWindow: time.Hour})
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Batching: true, Hooks: []config.Webhook{{URL: r.srv.URL}}}
	for range maxBatchEvents + 20 {
		d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-x", Event: "client-e"})
	}
	flush(t, d)
	var sizes []int
	for _, q := range r.requests() {
		sizes = append(sizes, len(q.p.Events))
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{20, maxBatchEvents}) {
		t.Errorf("batch sizes %v, want [20 %d]", sizes, maxBatchEvents)
	}
}

func TestFiltersByEventTypeAndChannel(t *testing.T) {
	byType := newReceiver(t, nil, false)
	byChan := newReceiver(t, nil, false)
	all := newReceiver(t, nil, false)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{
		{URL: byType.srv.URL, EventTypes: []string{EventChannelOccupied}},
		{URL: byChan.srv.URL, Filter: config.WebhookFilter{ChannelPrefix: "private-", ChannelSuffix: "-log"}},
		{URL: all.srv.URL},
	}}
	d := New(Options{})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "public"})
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-x-log", Event: "client-a"})
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-x", Event: "client-b"})
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "presence-x-log", Event: "client-c"})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "private-y-log"})
	flush(t, d)

	sorted := func(r *receiver) []string { s := names(r.events()); slices.Sort(s); return s }
	if got, want := sorted(byType), []string{"channel_occupied:private-y-log", "channel_occupied:public"}; !slices.Equal(got, want) {
		t.Errorf("event-type hook got %v, want %v", got, want)
	}
	if got, want := sorted(byChan), []string{"channel_occupied:private-y-log", "client_event:private-x-log"}; !slices.Equal(got, want) {
		t.Errorf("channel-filter hook got %v, want %v", got, want)
	}
	if got := len(all.events()); got != 5 {
		t.Errorf("unfiltered hook got %d events, want 5", got)
	}
}

func TestVacateCancelledByQuickReoccupy(t *testing.T) {
	all := newReceiver(t, nil, false)
	vacOnly := newReceiver(t, nil, false)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{
		{URL: all.srv.URL},
		{URL: vacOnly.srv.URL, EventTypes: []string{EventChannelVacated}},
	}}
	// A long delay and no Run: nothing can fire on its own, so the test
	// sees exactly what the anti-flap rule leaves behind once Flush sends it.
	d := New(Options{VacateDelay: time.Hour})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c1"})
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "c1"})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c1"}) // page reload
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "c2"})  // really gone
	flush(t, d)

	got := names(all.events())
	slices.Sort(got)
	if want := []string{"channel_occupied:c1", "channel_vacated:c2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// The vacated-only hook does not want channel_occupied, yet the
	// re-occupy must still cancel its pending vacate.
	if got, want := names(vacOnly.events()), []string{"channel_vacated:c2"}; !slices.Equal(got, want) {
		t.Errorf("vacated-only hook got %v, want %v", got, want)
	}
}

func TestMemberRemovedCancelledByQuickReadd(t *testing.T) {
	r := newReceiver(t, nil, false)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := New(Options{VacateDelay: time.Hour})
	d.Emit(tg, Event{Name: EventMemberAdded, Channel: "presence-p", UserID: "u1"})
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-p", UserID: "u1"})
	d.Emit(tg, Event{Name: EventMemberAdded, Channel: "presence-p", UserID: "u1"}) // back: both suppressed
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-p", UserID: "u2"})
	d.Emit(tg, Event{Name: EventMemberAdded, Channel: "presence-p", UserID: "u3"})   // other user: no cancel
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-q", UserID: "u4"}) // other channel
	d.Emit(tg, Event{Name: EventMemberAdded, Channel: "presence-r", UserID: "u4"})
	flush(t, d)

	got := names(r.events())
	slices.Sort(got)
	want := []string{
		"member_added:presence-p:u1", "member_added:presence-p:u3", "member_added:presence-r:u4",
		"member_removed:presence-p:u2", "member_removed:presence-q:u4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestVacateSentAfterDelay(t *testing.T) {
	r := newReceiver(t, nil, false)
	clk := newFakeClock()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{VacateDelay: 3 * time.Second, Now: clk.Now})
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "c"})
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-c", UserID: "u"})
	clk.Advance(2 * time.Second)
	time.Sleep(50 * time.Millisecond) // several scheduler polls
	if n := len(r.requests()); n != 0 {
		t.Fatalf("%d requests before the delay ran out", n)
	}
	clk.Advance(time.Second)
	r.wait(t, 2) // one event per request: this target does not batch
	got := names(r.events())
	slices.Sort(got)
	if want := []string{"channel_vacated:c", "member_removed:presence-c:u"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Once sent, a re-occupy is an ordinary event again.
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	if q := r.wait(t, 3); q[2].p.Events[0].Name != EventChannelOccupied {
		t.Errorf("third request %v", names(q[2].p.Events))
	}
}

func TestCacheMissDeduplicated(t *testing.T) {
	r := newReceiver(t, nil, false)
	clk := newFakeClock()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := New(Options{Now: clk.Now})
	for range 50 { // a reconnect storm on one cache channel
		d.Emit(tg, Event{Name: EventCacheMiss, Channel: "cache-1"})
	}
	d.Emit(tg, Event{Name: EventCacheMiss, Channel: "cache-2"})
	clk.Advance(2 * cacheMissWindow)
	d.Emit(tg, Event{Name: EventCacheMiss, Channel: "cache-1"})
	flush(t, d)
	got := names(r.events())
	slices.Sort(got)
	if want := []string{"cache_miss:cache-1", "cache_miss:cache-1", "cache_miss:cache-2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSubscriptionCountCoalesced(t *testing.T) {
	r := newReceiver(t, nil, false)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	// A fake clock, so the window cannot close in the middle of the burst
	// however long a loaded machine stalls the test.
	clk := newFakeClock()
	d := start(t, Options{BatchWindow: 30 * time.Millisecond, Now: clk.Now})
	n := 0
	for range 3 {
		n++
		d.Emit(tg, Event{Name: EventSubscriptionCount, Channel: "c", SubscriptionCount: &n}) // same pointer reused
	}
	two := 2
	d.Emit(tg, Event{Name: EventSubscriptionCount, Channel: "other", SubscriptionCount: &two})
	n = 99 // must not leak into the queued event
	clk.Advance(30 * time.Millisecond)
	r.wait(t, 2)
	time.Sleep(100 * time.Millisecond) // room for any uncoalesced extras to show up
	q := r.requests()
	counts := map[string]int{}
	for _, req := range q {
		for _, e := range req.p.Events {
			counts[e.Channel] = *e.SubscriptionCount
		}
	}
	if counts["c"] != 3 || counts["other"] != 2 || len(q) != 2 {
		t.Errorf("%d requests, counts %v; want 2 requests, c=3 other=2", len(q), counts)
	}
	if !strings.Contains(string(q[0].body), `"subscription_count":`) {
		t.Errorf("body %s lacks subscription_count", q[0].body)
	}
}

// On a cluster, Options.Confirm decides at the end of the hold whether a
// held event still goes out: once per event (not per hook), and Flush
// waits for the answer.
func TestHeldEventsAskConfirm(t *testing.T) {
	r := newReceiver(t, nil, false)
	clk := newFakeClock()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}, {URL: r.srv.URL}}}
	var mu sync.Mutex
	asked := map[string]int{}
	d := start(t, Options{VacateDelay: 3 * time.Second, Now: clk.Now, Confirm: func(_ context.Context, app string, ev Event) bool {
		mu.Lock()
		defer mu.Unlock()
		asked[app+"/"+ev.Channel]++
		return ev.Channel != "reoccupied" // another node took its marker
	}})
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "reoccupied"})
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "gone"})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "other"}) // not held: never asked
	r.wait(t, 2)                                                    // the occupied, once per hook
	clk.Advance(3 * time.Second)
	r.wait(t, 4) // the confirmed vacate, once per hook
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := names(r.events())
	slices.Sort(got)
	if want := []string{"channel_occupied:other", "channel_occupied:other", "channel_vacated:gone", "channel_vacated:gone"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["a/reoccupied"] != 1 || asked["a/gone"] != 1 || asked["a/other"] != 0 {
		t.Errorf("Confirm asked %v, want once per held event", asked)
	}
}

// time_ms is when an event was decided, not when its request left: a
// request that waited for an in-flight slot keeps its event's time.
func TestTimeMsIsWhenTheEventWasEmitted(t *testing.T) {
	gate := make(chan struct{})
	r := newGatedReceiver(t, gate)
	clk := newFakeClock()
	emitted := clk.Now().UnixMilli()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{Now: clk.Now})
	for i := range appInFlight + 1 {
		d.Emit(tg, Event{Name: EventChannelOccupied, Channel: fmt.Sprint("c", i)})
	}
	r.wait(t, appInFlight) // the last one waits for a slot
	clk.Advance(10 * time.Second)
	close(gate)
	for _, q := range r.wait(t, appInFlight+1) {
		if q.p.TimeMs != emitted {
			t.Errorf("%s: time_ms %d, want %d (when it was emitted)", names(q.p.Events), q.p.TimeMs, emitted)
		}
	}
}

// A batch's time_ms is when its last event was emitted, not when its
// window closed.
func TestBatchTimeMsIsItsLastEvent(t *testing.T) {
	r := newReceiver(t, nil, false)
	clk := newFakeClock()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Batching: true, Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{BatchWindow: 100 * time.Millisecond, Now: clk.Now})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "a"})
	clk.Advance(30 * time.Millisecond)
	last := clk.Now().UnixMilli()
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "b"})
	clk.Advance(5 * time.Second)
	q := r.wait(t, 1)[0]
	if len(q.p.Events) != 2 || q.p.TimeMs != last {
		t.Errorf("%v with time_ms %d, want both events with %d (the last one's)", names(q.p.Events), q.p.TimeMs, last)
	}
}

// A held event's time_ms is the end of its hold, taken before Confirm
// runs: on a cluster, a re-add on another node that finds the marker
// already taken by Confirm was decided later and must carry a later
// time_ms, however long the confirmation took.
func TestHeldEventTimeMsIsTheEndOfItsHold(t *testing.T) {
	r := newReceiver(t, nil, false)
	clk := newFakeClock()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{VacateDelay: 3 * time.Second, Now: clk.Now, Confirm: func(context.Context, string, Event) bool {
		clk.Advance(2 * time.Second) // a slow store round trip
		return true
	}})
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-x", UserID: "u"})
	clk.Advance(3 * time.Second)
	holdEnd := clk.Now().UnixMilli()
	q := r.wait(t, 1)[0]
	if q.p.TimeMs != holdEnd {
		t.Errorf("time_ms %d, want %d (the hold's end, before Confirm)", q.p.TimeMs, holdEnd)
	}
}
