package pusher

import (
	"context"
	"sync"
	"time"
)

// workCtx is a session's context for engine calls, cancelled when the
// connection closes so that a cluster engine's wait does not outlive it.
// context.WithCancel would cost 96 bytes per connection (measured with
// TestMemoryPerIdleConnection in internal/server: 5% of the live heap of an
// idle connection); this one lives inside the session and makes its done
// channel only when something waits on it, which the memory engine never
// does.
type workCtx struct {
	mu        sync.Mutex
	done      chan struct{}
	after     *afterFunc // registered by AfterFunc, run by cancel
	cancelled bool
}

// afterFunc is one AfterFunc registration, in a list so that workCtx stays
// one word bigger rather than three (a slice).
type afterFunc struct {
	f    func()
	next *afterFunc
}

var _ context.Context = (*workCtx)(nil)

func (w *workCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (w *workCtx) Value(any) any               { return nil }

func (w *workCtx) Done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		w.done = make(chan struct{})
		if w.cancelled {
			close(w.done)
		}
	}
	return w.done
}

func (w *workCtx) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		return context.Canceled
	}
	return nil
}

// AfterFunc runs f in its own goroutine once the context is cancelled;
// stop unregisters it and reports whether that kept f from running.
// context.WithTimeout and friends use it (context's afterFuncer) for
// contexts derived from this one, as the cluster engines derive theirs;
// without it each derived context would start a goroutine to wait on Done.
func (w *workCtx) AfterFunc(f func()) (stop func() bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		go f()
		return func() bool { return false }
	}
	e := &afterFunc{f: f, next: w.after}
	w.after = e
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for p := &w.after; *p != nil; p = &(*p).next {
			if *p == e {
				*p = e.next
				return true
			}
		}
		return false
	}
}

// cancel ends the context; later calls do nothing.
func (w *workCtx) cancel() {
	w.mu.Lock()
	if w.cancelled {
		w.mu.Unlock()
		return
	}
	w.cancelled = true
	if w.done != nil {
		close(w.done)
	}
	after := w.after
	w.after = nil
	w.mu.Unlock()
	for e := after; e != nil; e = e.next {
		go e.f()
	}
}
