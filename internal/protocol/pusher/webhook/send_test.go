package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/metrics"
)

func TestRetriesThenSuccess(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}, false)
	m := metrics.New()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{MaxBackoff: 5 * time.Millisecond, Metrics: m})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	q := r.wait(t, 3)
	for i := 1; i < len(q); i++ {
		// Byte-identical retries let a receiver de-duplicate.
		if !bytes.Equal(q[i].body, q[0].body) || q[i].header.Get("X-Pusher-Signature") != q[0].header.Get("X-Pusher-Signature") {
			t.Errorf("retry %d differs from the first attempt", i)
		}
	}
	eventually(t, "ok counted", func() bool { return counter(t, m, "a", "ok") == 1 })
	if got := counter(t, m, "a", "retry"); got != 2 {
		t.Errorf("retry counter %v, want 2", got)
	}
	if got := counter(t, m, "a", "failed"); got != 0 {
		t.Errorf("failed counter %v, want 0", got)
	}
}

func TestRetriesExhaustedCountedAsFailed(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusServiceUnavailable }, false)
	m := metrics.New()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := start(t, Options{MaxAttempts: 3, MaxBackoff: 5 * time.Millisecond, Metrics: m})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	eventually(t, "failed counted", func() bool { return counter(t, m, "a", "failed") == 1 })
	time.Sleep(50 * time.Millisecond) // a fourth attempt would have shown up by now
	if n := len(r.requests()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if got := counter(t, m, "a", "retry"); got != 2 {
		t.Errorf("retry counter %v, want 2", got)
	}
	// Nothing is left queued: Flush has nothing to do.
	flush(t, d)
}

func TestBadURLFailsWithoutRetry(t *testing.T) {
	m := metrics.New()
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: "ftp://example.invalid/x"}}}
	d := start(t, Options{MaxBackoff: 5 * time.Millisecond, Metrics: m})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	eventually(t, "failed counted", func() bool { return counter(t, m, "a", "failed") == 1 })
	if got := counter(t, m, "a", "retry"); got != 0 {
		t.Errorf("retry counter %v, want 0", got)
	}
}

// A receiver that never answers must not slow Emit, and must not keep other
// apps' webhooks from going out, neither by holding every worker nor by
// filling the queue.
func TestHangingReceiverDoesNotBlockEmitOrOtherApps(t *testing.T) {
	dead := newReceiver(t, nil, true)
	// The live app's requests are held until its events are all queued, so
	// each of them meets a full queue: one sent and answered early would
	// free a slot and spare a dead-app event from eviction.
	aliveGate := make(chan struct{})
	alive := newGatedReceiver(t, aliveGate)
	m := metrics.New()
	const queue = 1000
	d := start(t, Options{QueueSize: queue, Metrics: m, Timeout: time.Minute})
	ta := &Target{AppID: "dead", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: dead.srv.URL}}}
	tb := &Target{AppID: "alive", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: alive.srv.URL}}}

	// Five queues' worth: an Emit that waited for queue space would wait
	// here for the dead requests' minute-long timeout (and the test would
	// hang); every event beyond the queue is dropped and counted instead.
	// How fast Emit is on a full queue is BenchmarkEmitFullQueue's number.
	const n = 5 * queue
	for i := range n {
		d.Emit(ta, Event{Name: EventClientEvent, Channel: "private-c", Event: "client-e", SocketID: "1.1", Data: string(rune('a' + i%26))})
	}
	dead.wait(t, appInFlight) // its workers are stuck
	if got := counter(t, m, "dead", "dropped"); got != n-queue {
		t.Errorf("dropped %v, want %d", got, n-queue)
	}

	// The queue is full of the dead app's events, yet another app's event
	// gets in (evicting one of the dead app's) and out (a free worker).
	for i := range 3 {
		d.Emit(tb, Event{Name: EventChannelOccupied, Channel: string(rune('x' + i))})
	}
	if got := counter(t, m, "dead", "dropped"); got != n-queue+3 {
		t.Errorf("dead app dropped %v after eviction, want %d", got, n-queue+3)
	}
	if got := counter(t, m, "alive", "dropped"); got != 0 {
		t.Errorf("alive app dropped %v", got)
	}
	alive.wait(t, 3) // all three out at once, on workers the dead app cannot hold
	close(aliveGate)
	eventually(t, "alive app's requests answered", func() bool { return counter(t, m, "alive", "ok") == 3 })
	if got := len(dead.requests()); got != appInFlight {
		t.Errorf("dead receiver has %d requests in flight, want the per-app cap %d", got, appInFlight)
	}
}

// BenchmarkEmitFullQueue is one Emit while a receiver that never answers
// holds the app's workers and the queue is full of its events: each Emit
// drops one event rather than wait for space.
//
//	go test -run '^$' -bench EmitFullQueue -benchmem ./internal/webhook/
func BenchmarkEmitFullQueue(b *testing.B) {
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer dead.Close()
	defer close(release) // before Close: unblock the hung handlers
	const queue = 1000
	d := New(Options{QueueSize: queue, Metrics: metrics.New(), Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	tg := &Target{AppID: "dead", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: dead.URL}}}
	ev := Event{Name: EventClientEvent, Channel: "private-c", Event: "client-e", SocketID: "1.1", Data: "a"}
	for range queue + appInFlight { // full, and every worker of the app stuck
		d.Emit(tg, ev)
	}
	for b.Loop() {
		d.Emit(tg, ev)
	}
}

func TestFlushSendsDelayedAndBatchedNow(t *testing.T) {
	r := newReceiver(t, nil, false)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Batching: true, Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := New(Options{VacateDelay: time.Hour, BatchWindow: time.Hour})
	d.Emit(tg, Event{Name: EventChannelVacated, Channel: "c"})
	d.Emit(tg, Event{Name: EventMemberRemoved, Channel: "presence-c", UserID: "u"})
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-c", Event: "client-a"})
	d.Emit(tg, Event{Name: EventClientEvent, Channel: "private-c", Event: "client-b"})
	begin := time.Now()
	flush(t, d)
	// Held an hour, they could not go out in time at all unless sent at
	// once; the bound is loose for a loaded machine.
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Flush took %v: delayed events were not sent at once", took)
	}
	if got := len(r.events()); got != 4 {
		t.Errorf("flushed %d events, want 4: %v", got, names(r.events()))
	}
}

func TestFlushBoundedByContext(t *testing.T) {
	r := newReceiver(t, nil, true)
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: r.srv.URL}}}
	d := New(Options{Timeout: time.Minute})
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := d.Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush error %v, want deadline exceeded", err)
	}
	// Without the deadline it would take the minute-long request timeout;
	// the slack is for a loaded machine.
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Flush took %v past its deadline", took)
	}
}

// Stopping Run mid-request puts the request back; Flush sends it again.
func TestRunStopRequeuesForFlush(t *testing.T) {
	var calls, completed atomic.Int32
	hung, gaveUp, testEnd := make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Read the body first: a net/http server only watches for the
		// client hanging up (and cancels the request context) once the
		// handler has read the body to the end.
		_, _ = io.Copy(io.Discard, req.Body)
		if calls.Add(1) == 1 {
			close(hung)
			select {
			case <-req.Context().Done(): // the dispatcher gave up on it
				close(gaveUp)
			case <-testEnd: // it did not: fail below rather than hang in srv.Close
			}
			return
		}
		completed.Add(1)
	}))
	defer srv.Close()
	defer close(testEnd) // runs first, so Close never waits on a hung handler
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: srv.URL}}}
	d := New(Options{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	<-hung
	cancel()
	<-done
	select {
	case <-gaveUp:
	case <-time.After(patience):
		t.Error("the request cut short by Run's end was never cancelled at the receiver")
	}
	flush(t, d)
	if got := completed.Load(); got != 1 {
		t.Errorf("%d completed requests after Flush, want 1 (the resend)", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A client that ignores request contexts (a custom Options.Client can) must
// hold up neither Run nor Flush past their contexts: the request is
// abandoned and its job goes back to the queue for the next try.
func TestRunAndFlushBoundedWhateverTheClient(t *testing.T) {
	var calls, delivered atomic.Int32
	stuck := make(chan struct{}, 2)
	release := make(chan struct{})
	defer close(release)
	client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, req.Body)
		if calls.Add(1) <= 2 { // Run's request, then the first Flush's
			stuck <- struct{}{}
			<-release // deaf to req.Context()
			return nil, errors.New("released at the end of the test")
		}
		delivered.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})}
	tg := &Target{AppID: "a", Key: "k", Secret: "s", Hooks: []config.Webhook{{URL: "http://receiver.invalid/hook"}}}
	d := New(Options{Client: client})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	d.Emit(tg, Event{Name: EventChannelOccupied, Channel: "c"})
	<-stuck
	cancel()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("Run did not return after its context ended: a worker is stuck in a request")
	}

	fctx, fcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer fcancel()
	begin := time.Now()
	if err := d.Flush(fctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush error %v, want deadline exceeded", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Flush took %v past its deadline", took)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d requests, want 2 (Run's, then the first Flush's)", got)
	}

	flush(t, d) // the job is still queued, and this time the client answers
	if got := delivered.Load(); got != 1 {
		t.Errorf("%d delivered, want 1", got)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	d := New(Options{})
	for n := 1; n <= 10; n++ {
		top := min(time.Second<<(n-1), 60*time.Second)
		for range 20 {
			if b := d.backoff(n); b < top/2 || b > top {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, b, top/2, top)
			}
		}
	}
	small := New(Options{MaxBackoff: 10 * time.Millisecond})
	if b := small.backoff(1); b > 10*time.Millisecond {
		t.Errorf("backoff %v exceeds MaxBackoff", b)
	}
}
