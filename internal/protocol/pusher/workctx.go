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
	cancelled bool
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

// cancel ends the context; later calls do nothing.
func (w *workCtx) cancel() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		return
	}
	w.cancelled = true
	if w.done != nil {
		close(w.done)
	}
}
