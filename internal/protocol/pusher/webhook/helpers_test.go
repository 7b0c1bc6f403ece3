package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/metrics"
)

// received is one request as the receiver saw it.
type received struct {
	header http.Header
	body   []byte
	p      payload
}

// receiver is a real HTTP server on loopback that records webhook requests.
// status decides the reply to the n-th request (1-based); nil means 200.
// hang makes every request wait until the client gives up or the test ends.
type receiver struct {
	srv    *httptest.Server
	status func(n int) int
	hang   bool
	gate   <-chan struct{} // if set, every request waits for it to close before answering

	mu   sync.Mutex
	reqs []received
	got  chan struct{} // one token per request, buffered
}

func newReceiver(t *testing.T, status func(n int) int, hang bool) *receiver {
	t.Helper()
	return startReceiver(t, &receiver{status: status, hang: hang})
}

// newGatedReceiver answers 200 to each request once gate is closed, so a
// test can hold requests in flight while it checks the queue.
func newGatedReceiver(t *testing.T, gate <-chan struct{}) *receiver {
	t.Helper()
	return startReceiver(t, &receiver{gate: gate})
}

func startReceiver(t *testing.T, r *receiver) *receiver {
	t.Helper()
	r.got = make(chan struct{}, 1<<16)
	release := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("body is not JSON: %v: %q", err, body)
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body, p: p})
		n := len(r.reqs)
		r.mu.Unlock()
		r.got <- struct{}{}
		if r.hang {
			select {
			case <-req.Context().Done():
			case <-release:
			}
			return
		}
		if r.gate != nil {
			select {
			case <-r.gate:
			case <-req.Context().Done():
				return
			case <-release:
				return
			}
		}
		code := http.StatusOK
		if r.status != nil {
			code = r.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: unblock hung handlers so Close returns
	return r
}

// patience bounds how long a test waits for something that should happen
// at once. It only decides how soon a broken test fails, so it is generous:
// -race on a loaded 2-core CI machine can stall a goroutine for seconds.
const patience = 15 * time.Second

// wait blocks until the receiver has seen at least n requests.
func (r *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(patience)
	for {
		if rs := r.requests(); len(rs) >= n {
			return rs
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d", len(r.requests()), n)
		}
	}
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// events flattens every request's events, in arrival order.
func (r *receiver) events() []Event {
	var out []Event
	for _, q := range r.requests() {
		out = append(out, q.p.Events...)
	}
	return out
}

// start runs d until the test ends.
func start(t *testing.T, opts Options) *Dispatcher {
	t.Helper()
	d := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func flush(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// counter reads switchboard_webhook_sends_total{app,result}.
func counter(t *testing.T, m *metrics.Metrics, app, result string) float64 {
	t.Helper()
	return m.Value("switchboard_webhook_sends_total", "app", app, "result", result)
}

// eventually polls cond for up to patience; metrics are updated just after
// the receiver answers, so tests wait for them rather than sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeClock is a hand-moved clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func names(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name + ":" + e.Channel
		if e.UserID != "" {
			out[i] += ":" + e.UserID
		}
	}
	return out
}
