package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// Run sends queued webhooks until ctx ends. Requests cut short by ctx go back
// to the queue, so Flush (or a later Run) can still send them. Run returns as
// soon as ctx ends, without waiting for any request to finish (see send).
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.scheduler(ctx) })
	for range numWorkers {
		wg.Go(func() { d.worker(ctx) })
	}
	wg.Go(func() {
		t := time.NewTicker(reportEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.reportOnce()
			}
		}
	})
	wg.Wait()
	d.reportOnce()
}

// Flush sends everything held, including delayed events and open batches,
// which go out at once. It returns when nothing is left or ctx ends, never
// later, whatever the receivers or the client do. It works
// with or without Run; the usual shutdown is to stop Run, then Flush with a
// deadline.
func (d *Dispatcher) Flush(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.mu.Lock()
	d.flushing++
	d.fireAllButRetriesLocked(d.now())
	d.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { d.scheduler(fctx) })
	for range numWorkers {
		wg.Go(func() { d.worker(fctx) })
	}
	tick := time.NewTicker(flushPoll)
	defer tick.Stop()
	var err error
	for err == nil {
		d.mu.Lock()
		left := d.total
		d.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("webhook flush: %d events unsent: %w", left, ctx.Err())
		case <-tick.C:
		}
	}
	cancel()
	wg.Wait()
	d.mu.Lock()
	d.flushing--
	d.mu.Unlock()
	d.reportOnce()
	if err != nil {
		d.log.Warn("webhook flush incomplete", "err", err)
	}
	return err
}

func (d *Dispatcher) worker(ctx context.Context) {
	// Run and Flush may overlap, each with its own workers on the one wake
	// channel. A worker that stops may have just taken the token meant for
	// a live one; pass it on so that worker does not sleep on a ready app.
	defer signal(d.wake)
	for ctx.Err() == nil {
		d.mu.Lock()
		j := d.nextJobLocked()
		more := len(d.ready) > 0
		d.mu.Unlock()
		if j == nil {
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			}
			continue
		}
		if more {
			signal(d.wake) // pass the baton: one wake token may stand for several apps
		}
		d.attempt(ctx, j)
	}
}

// errPermanent marks a failure that retrying cannot fix (a malformed URL).
var errPermanent = errors.New("not retryable")

type payload struct {
	TimeMs int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// attempt makes one request for j and decides what happens next.
func (d *Dispatcher) attempt(ctx context.Context, j *job) {
	if j.body == nil {
		j.body, _ = json.Marshal(payload{TimeMs: j.at.UnixMilli(), Events: j.events}) // cannot fail for these types
		j.sig = pushersign.HMACHex(j.t.Secret, string(j.body))
		j.first = d.now()
	}
	j.attempts++
	attempts := j.attempts // j is not ours to read once handed back below
	status, err := d.send(ctx, j)
	now := d.now()

	var result string
	var wait time.Duration
	d.mu.Lock()
	a := j.app
	a.inflight--
	switch {
	case err == nil && status >= 200 && status < 300:
		result = "ok"
		a.failing = false
		d.releaseLocked(a, len(j.events))
	case ctx.Err() != nil:
		// Shutting down, not the receiver's fault: put it back in front,
		// unattempted, for Flush.
		j.attempts--
		a.pending = append([]*job{j}, a.pending...)
	default:
		// A malformed URL says nothing about the receiver's health.
		a.failing = !errors.Is(err, errPermanent)
		wait = d.backoff(j.attempts)
		if errors.Is(err, errPermanent) || j.attempts >= d.maxAttempts || now.Add(wait).Sub(j.first) > retryBudget {
			result = "failed"
			d.releaseLocked(a, len(j.events))
		} else {
			result = "retry"
			d.pushTimedLocked(&timed{kind: kindRetry, due: now.Add(wait), app: a, j: j})
		}
	}
	d.markReadyLocked(a)
	d.mu.Unlock()

	if result != "" && d.m != nil {
		d.m.WebhookResult(a.id, result)
	}
	switch result {
	case "retry":
		d.log.Debug("webhook attempt failed, will retry", d.logAttrs(j, attempts, status, err, "retry_in", wait)...)
	case "failed":
		d.log.Warn("webhook delivery failed", d.logAttrs(j, attempts, status, err)...)
	}
}

// logAttrs describes a request for the log. Never the secret or the
// signature, and the URL without any password in it. It reads only the
// parts of j that never change once j is queued: by the time the outcome is
// logged another worker may be retrying j.
func (d *Dispatcher) logAttrs(j *job, attempts, status int, err error, extra ...any) []any {
	attrs := []any{"app", j.app.id, "url", redactURL(j.t.Hooks[j.hook].URL),
		"attempts", attempts, "events", len(j.events)}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	return append(attrs, extra...)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// send is post bounded by ctx whatever the client does. The standard
// transport gives up on a request as soon as its context ends, but a custom
// Options.Client (or its RoundTripper) need not, and a worker blocked past
// ctx would hold up Run and Flush, which wait for their workers: Flush would
// then miss its deadline, and shutdown would hang. So when ctx ends first the
// request is abandoned to a goroutine of its own (its context is cancelled
// too, so it ends whenever the client notices) and the job goes back to the
// queue; should the abandoned request still get through, the resend is a
// duplicate, which at-least-once delivery allows.
//
// The abandoned goroutine reads only j's immutable parts (target, hook,
// body, signature), so the job can be retried meanwhile.
func (d *Dispatcher) send(ctx context.Context, j *job) (int, error) {
	if err := context.Cause(ctx); err != nil {
		// Stopped between taking j and sending it: no request at all. A
		// client deaf to contexts would otherwise get one on behalf of a
		// stopped Run, and Flush would find the job's retry taken
		// (TestRunAndFlushBoundedWhateverTheClient failed so about one
		// run in 200 under -race, more often on a loaded machine).
		return 0, err
	}
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		status, err := d.post(ctx, j)
		done <- result{status, err}
	}()
	select {
	case r := <-done:
		return r.status, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished at the same moment: keep a real answer
			return r.status, r.err
		default:
			return 0, context.Cause(ctx)
		}
	}
}

// post sends j once and returns the HTTP status.
func (d *Dispatcher) post(ctx context.Context, j *job) (int, error) {
	h := &j.t.Hooks[j.hook]
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, fmt.Errorf("%w: bad webhook URL", errPermanent)
	}
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.URL, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	// Set last so a custom header cannot break the signature contract.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", j.t.Key)
	req.Header.Set("X-Pusher-Signature", j.sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused; receivers' bodies are
	// not interesting.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close() // the status is the answer; the body is not needed
	return resp.StatusCode, nil
}

// backoff is the wait after the n-th failed attempt: exponential from
// min(1s, MaxBackoff), capped at MaxBackoff, with "equal jitter" (half fixed,
// half random) so receivers coming back up are not hit in lockstep.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := min(time.Second, d.maxBackoff)
	for i := 1; i < n && b < d.maxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.maxBackoff)
	half := b / 2
	return half + rand.N(b-half+1)
}
