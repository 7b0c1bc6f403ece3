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

// Slot is embedded in a connection type to give it the one field a Set
// needs: its place in the set's slice. A map from connection to nothing
// cost 33 B per connection (TestMemoryPerIdleConnection, internal/server);
// a slot is 4 B, and fits in padding the connection types already had.
type Slot struct {
	i int32 // 1 + the index in Set.list; 0 while in no set
}

// ConnsetSlot gives a Set the slot; nothing else touches it.
func (s *Slot) ConnsetSlot() *int32 { return &s.i }

// Member is a connection type that embeds Slot (as a pointer type: *T
// has the method). A value is in at most one Set at a time.
type Member interface {
	comparable
	ConnsetSlot() *int32
}

// Set is a set of connections. Its lock is a leaf: no method calls out
// while holding it, so callers may use it under their own locks.
type Set[T Member] struct {
	mu       sync.Mutex
	list     []T
	draining bool
	empty    chan struct{} // made by Drain, closed when the set empties
}

// Add records c and reports whether the set is draining; a caller told so
// must end c at once (it was accepted while Drain was collecting). Adding
// c again changes nothing.
func (s *Set[T]) Add(c T) (draining bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot := c.ConnsetSlot(); *slot == 0 {
		s.list = append(s.list, c)
		*slot = int32(len(s.list))
	}
	return s.draining
}

// Remove forgets c; a c not in the set is ignored.
func (s *Set[T]) Remove(c T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot := c.ConnsetSlot()
	i := int(*slot) - 1
	if i < 0 || i >= len(s.list) || s.list[i] != c {
		return
	}
	last := len(s.list) - 1
	moved := s.list[last]
	s.list[i] = moved
	*moved.ConnsetSlot() = int32(i + 1)
	var zero T
	s.list[last] = zero
	s.list = s.list[:last]
	*slot = 0
	if len(s.list) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
	// A set that emptied out after a storm gives its slice back.
	if cap(s.list) > 1024 && len(s.list) < cap(s.list)/4 {
		s.list = append(make([]T, 0, cap(s.list)/2), s.list...)
	}
}

// Len is the number of connections.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
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
	return append(buf, s.list...)
}

// Drain marks the set draining, calls end on every connection (outside
// the lock), then waits until each has been removed or ctx ends.
func (s *Set[T]) Drain(ctx context.Context, end func(T)) {
	s.mu.Lock()
	s.draining = true
	all := append([]T(nil), s.list...)
	var wait chan struct{}
	if len(s.list) > 0 {
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
