// Package connset keeps a protocol front-end's open connections so that
// shutdown can reach every one: add on accept, remove on close, drain.
// Every front-end (Pusher, Damon, Decentraland) needs exactly this, and the
// part that is easy to get wrong (a connection accepted while Drain is
// collecting, waiting for the last one without polling) lives here once.
package connset

import (
	"context"
	"sync"
)

// Set is a set of connections. Its lock is a leaf: no method calls out
// while holding it, so callers may use it under their own locks.
type Set[T comparable] struct {
	mu       sync.Mutex
	m        map[T]struct{}
	draining bool
	empty    chan struct{} // made by Drain, closed when the set empties
}

// Add records c and reports whether the set is draining; a caller told so
// must end c at once (it was accepted while Drain was collecting).
func (s *Set[T]) Add(c T) (draining bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[T]struct{}{}
	}
	s.m[c] = struct{}{}
	return s.draining
}

// Remove forgets c.
func (s *Set[T]) Remove(c T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
	if len(s.m) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
}

// Len is the number of connections.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Draining reports whether Drain has been called.
func (s *Set[T]) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// AppendTo appends every connection to buf, so a periodic sweep (a
// heartbeat) can reuse one slice.
func (s *Set[T]) AppendTo(buf []T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		buf = append(buf, c)
	}
	return buf
}

// Drain marks the set draining, calls end on every connection (outside
// the lock), then waits until each has been removed or ctx ends.
func (s *Set[T]) Drain(ctx context.Context, end func(T)) {
	s.mu.Lock()
	s.draining = true
	all := make([]T, 0, len(s.m))
	for c := range s.m {
		all = append(all, c)
	}
	var wait chan struct{}
	if len(s.m) > 0 {
		if s.empty == nil {
			s.empty = make(chan struct{})
		}
		wait = s.empty
	}
	s.mu.Unlock()
	for _, c := range all {
		end(c)
	}
	if wait == nil {
		return
	}
	select {
	case <-wait:
	case <-ctx.Done():
	}
}
