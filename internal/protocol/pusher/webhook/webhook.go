// Package webhook delivers Pusher-compatible webhooks (channel_occupied,
// channel_vacated, member_added, member_removed, client_event, cache_miss,
// subscription_count) to the URLs an app configures.
//
// Emit is called from the message delivery path (subscribe, unsubscribe,
// client events), so it only does bookkeeping under one short mutex and never
// touches the network. Sending happens on a small pool of workers that pick
// apps round-robin, with a per-app in-flight limit, so one app's slow or dead
// receiver cannot occupy every worker. The queue is bounded: when it is full an
// event is dropped (counted and logged), and if another app holds a larger
// share of the queue its oldest unsent request is evicted instead, so one dead
// receiver cannot starve the others of queue space either.
//
// Delivery is at least once: a request cut short by shutdown is sent again by
// Flush, so a receiver may see the same body twice.
package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/metrics"
)

// Webhook event names (the "name" field of each event).
const (
	EventChannelOccupied   = "channel_occupied"
	EventChannelVacated    = "channel_vacated"
	EventMemberAdded       = "member_added"
	EventMemberRemoved     = "member_removed"
	EventClientEvent       = "client_event"
	EventCacheMiss         = "cache_miss"
	EventSubscriptionCount = "subscription_count"
)

// Event is one webhook event as it appears in the "events" array.
type Event struct {
	Name              string `json:"name"`
	Channel           string `json:"channel"`
	UserID            string `json:"user_id,omitempty"`
	Event             string `json:"event,omitempty"` // client_event: the event name
	Data              string `json:"data,omitempty"`  // client_event: the data as a string
	SocketID          string `json:"socket_id,omitempty"`
	SubscriptionCount *int   `json:"subscription_count,omitempty"`
}

// Target is one app's webhook configuration. The dispatcher keeps the pointer
// until the app's queued events are sent, so a config reload must build a new
// Target rather than mutate one that was passed to Emit.
type Target struct {
	AppID, Key, Secret string
	Hooks              []config.Webhook
	Batching           bool
}

// Options configures a Dispatcher. Zero values take the defaults noted.
type Options struct {
	QueueSize   int           // events held per dispatcher before dropping (10000)
	BatchWindow time.Duration // batching targets collect events this long (50ms); <0: no batching
	VacateDelay time.Duration // channel_vacated/member_removed held this long (3s); <0: no delay
	Timeout     time.Duration // per HTTP request (10s)
	MaxAttempts int           // attempts per request (5)
	MaxBackoff  time.Duration // backoff cap (60s); backoff starts at min(1s, MaxBackoff)
	Client      *http.Client  // default: a client that does not follow redirects
	Logger      *slog.Logger  // default: slog.Default()
	Metrics     *metrics.Metrics
	Now         func() time.Time // fake clock for tests; timers then poll it
	// Confirm, when set, is asked once before a held channel_vacated or
	// member_removed goes out (to every hook); false drops it. A cluster
	// uses it to learn whether another node saw the channel re-occupied
	// (the member re-added) during the hold. It runs outside the
	// dispatcher's lock and may make a network call.
	Confirm func(ctx context.Context, appID string, ev Event) bool
}

const (
	userAgent = "Switchboard-Webhooks/1.0"
	// numWorkers bounds concurrent requests per dispatcher. Goroutines are
	// cheap, but each in-flight request also holds a connection.
	numWorkers = 16
	// appInFlight caps one app's concurrent requests so a hanging receiver
	// can hold at most this many workers; failingInFlight applies while its
	// last attempt failed, so a dead receiver holds just one.
	appInFlight     = 4
	failingInFlight = 1
	// maxBatchEvents keeps a batched request body reasonably small.
	maxBatchEvents = 100
	// cacheMissWindow: many clients missing the same cache channel at once
	// (a reconnect storm) produce one cache_miss webhook, as Pusher does.
	cacheMissWindow = time.Second
	// retryBudget bounds how long one request keeps being retried, like
	// Pusher's five minutes, whatever MaxAttempts says.
	retryBudget   = 5 * time.Minute
	fakeClockPoll = 10 * time.Millisecond
	dropLogEvery  = time.Second
	reportEvery   = time.Second
	flushPoll     = 5 * time.Millisecond
)

// Dispatcher queues webhook events and sends them. Create it with New.
type Dispatcher struct {
	queueSize   int
	batchWindow time.Duration
	vacateDelay time.Duration
	timeout     time.Duration
	confirm     func(ctx context.Context, appID string, ev Event) bool
	maxAttempts int
	maxBackoff  time.Duration
	client      *http.Client
	log         *slog.Logger
	m           *metrics.Metrics
	now         func() time.Time
	fakeClock   bool

	kick chan struct{} // cap 1: a scheduler should look at the timer heap again
	wake chan struct{} // cap 1: a worker should look for a job

	mu            sync.Mutex
	total         int // event deliveries held, over all apps
	apps          map[string]*appState
	ready         []*appState // round-robin order of apps that can send now
	hog           *appState   // app thought to hold the most; eviction victim
	timed         timedHeap
	delayed       map[delayKey]*timed
	batches       map[batchKey]*timed
	recentMiss    map[chanKey]time.Time // cache_miss dedupe: expiry per channel
	lastMissSweep time.Time
	flushing      int

	dropsSinceLog atomic.Int64
	lastDropLog   atomic.Int64 // unix nanos
}

// New returns a Dispatcher. Events may be emitted before Run starts; they
// wait in the queue.
func New(opts Options) *Dispatcher {
	d := &Dispatcher{
		queueSize:   def(opts.QueueSize, 10000),
		batchWindow: def(opts.BatchWindow, 50*time.Millisecond),
		vacateDelay: def(opts.VacateDelay, 3*time.Second),
		timeout:     def(opts.Timeout, 10*time.Second),
		confirm:     opts.Confirm,
		maxAttempts: def(opts.MaxAttempts, 5),
		maxBackoff:  def(opts.MaxBackoff, 60*time.Second),
		client:      opts.Client,
		log:         opts.Logger,
		m:           opts.Metrics,
		now:         opts.Now,
		fakeClock:   opts.Now != nil,
		kick:        make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
		apps:        map[string]*appState{},
		delayed:     map[delayKey]*timed{},
		batches:     map[batchKey]*timed{},
		recentMiss:  map[chanKey]time.Time{},
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = appInFlight
		d.client = &http.Client{
			Timeout:   d.timeout,
			Transport: tr,
			// A POST redirected with 301/302 would arrive as a bodiless GET;
			// better to report the 3xx as a failure the operator can see.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return d
}

func def[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// matchHooks returns the indexes of t's hooks that want ev.
func matchHooks(t *Target, ev *Event) []int {
	var out []int
	for i := range t.Hooks {
		h := &t.Hooks[i]
		if len(h.EventTypes) > 0 && !slices.Contains(h.EventTypes, ev.Name) {
			continue
		}
		if !strings.HasPrefix(ev.Channel, h.Filter.ChannelPrefix) || !strings.HasSuffix(ev.Channel, h.Filter.ChannelSuffix) {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Emit queues ev for t's matching hooks. It never blocks on the network:
// when the queue is full the event is dropped and counted.
//
// channel_vacated and member_removed wait VacateDelay; a channel_occupied
// (member_added for the same user) arriving meanwhile cancels the pending one
// and is itself not sent, so a page reload produces no webhooks at all.
func (d *Dispatcher) Emit(t *Target, ev Event) {
	if t == nil || len(t.Hooks) == 0 {
		return
	}
	if ev.SubscriptionCount != nil { // the caller may reuse its int
		n := *ev.SubscriptionCount
		ev.SubscriptionCount = &n
	}
	hooks := matchHooks(t, &ev)
	now := d.now()
	var dropBuf [2]dropNote
	drops := dropBuf[:0]

	d.mu.Lock()
	// Cancellation comes before hook matching: a hook that only wants
	// channel_vacated must still lose the vacate when the channel comes back.
	switch ev.Name {
	case EventChannelOccupied:
		if d.cancelDelayedLocked(delayKey{t.AppID, ev.Channel, "", EventChannelVacated}) {
			d.mu.Unlock()
			return
		}
	case EventMemberAdded:
		if d.cancelDelayedLocked(delayKey{t.AppID, ev.Channel, ev.UserID, EventMemberRemoved}) {
			d.mu.Unlock()
			return
		}
	}
	if len(hooks) == 0 {
		d.mu.Unlock()
		return
	}

	var delay time.Duration
	ck := chanKey{t.AppID, ev.Channel}
	switch ev.Name {
	case EventChannelVacated, EventMemberRemoved:
		delay = d.vacateDelay
	case EventSubscriptionCount:
		delay = d.batchWindow // held briefly so a burst of (un)subscribes sends one count
	case EventCacheMiss:
		d.sweepMissesLocked(now)
		if exp, ok := d.recentMiss[ck]; ok && now.Before(exp) {
			d.mu.Unlock()
			return
		}
	}
	if d.flushing > 0 {
		delay = 0
	}
	dk := delayKey{t.AppID, ev.Channel, "", ev.Name}
	if ev.Name == EventMemberRemoved {
		dk.user = ev.UserID
	}
	if delay > 0 {
		if e := d.delayed[dk]; e != nil {
			// Same state change already pending: a newer subscription count
			// replaces the older one; a second vacate is a no-op.
			if ev.Name == EventSubscriptionCount {
				e.ev.SubscriptionCount = ev.SubscriptionCount
			}
			d.mu.Unlock()
			return
		}
	}

	app := d.appLocked(t.AppID)
	if !d.admitLocked(app, len(hooks), &drops) {
		drops = append(drops, dropNote{app: app.id, n: len(hooks)})
	} else {
		if ev.Name == EventCacheMiss {
			d.recentMiss[ck] = now.Add(cacheMissWindow)
		}
		if delay > 0 {
			e := &timed{kind: kindDelayed, due: now.Add(delay), app: app, dkey: dk, t: t, hooks: hooks, ev: ev}
			d.delayed[dk] = e
			d.pushTimedLocked(e)
		} else {
			for _, h := range hooks {
				d.deliverLocked(app, t, h, ev, now)
			}
		}
	}
	d.mu.Unlock()

	if len(drops) > 0 {
		d.noteDrops(drops)
	}
}

type dropNote struct {
	app string
	n   int
}

// noteDrops counts dropped events and logs them, at most once per
// dropLogEvery so a flood of drops cannot turn into a flood of log writes on
// the delivery path.
func (d *Dispatcher) noteDrops(drops []dropNote) {
	var n int64
	for _, dn := range drops {
		if d.m != nil {
			for range dn.n {
				d.m.WebhookResult(dn.app, "dropped")
			}
		}
		n += int64(dn.n)
	}
	d.dropsSinceLog.Add(n)
	now := time.Now().UnixNano() // real time: this limits log volume, not behaviour
	last := d.lastDropLog.Load()
	if now-last >= int64(dropLogEvery) && d.lastDropLog.CompareAndSwap(last, now) {
		d.log.Warn("webhook queue full, events dropped",
			"dropped", d.dropsSinceLog.Swap(0), "queue_size", d.queueSize, "app", drops[len(drops)-1].app)
	}
}

func (d *Dispatcher) sweepMissesLocked(now time.Time) {
	if now.Sub(d.lastMissSweep) < cacheMissWindow {
		return
	}
	d.lastMissSweep = now
	for k, exp := range d.recentMiss {
		if !now.Before(exp) {
			delete(d.recentMiss, k)
		}
	}
}
