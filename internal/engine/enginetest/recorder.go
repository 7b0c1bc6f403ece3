// Package enginetest is the contract every engine.Engine passes: one suite
// run against the memory engine (one node) and each cluster engine (several
// nodes in one cluster), so that the hub and the protocols can rely on the
// same behaviour whichever engine a deployment runs.
package enginetest

import (
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Recorder is an engine.Local that remembers what reached its node and
// lets a test wait for it.
type Recorder struct {
	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every event
	deliveries []engine.Publication
	terminated []string // "ns/user"
	kicked     []string // "ns/conn/claim"
	orphans    []engine.Orphan
	fenced     int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

func (r *Recorder) note() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// DeliverLocal implements engine.Local.
func (r *Recorder) DeliverLocal(p engine.Publication) {
	p.Payload = slices.Clone(p.Payload)
	r.mu.Lock()
	r.deliveries = append(r.deliveries, p)
	r.note()
	r.mu.Unlock()
}

// TerminateLocal implements engine.Local.
func (r *Recorder) TerminateLocal(ns, userID string) int {
	r.mu.Lock()
	r.terminated = append(r.terminated, ns+"/"+userID)
	r.note()
	r.mu.Unlock()
	return 1
}

// KickLocal implements engine.Local.
func (r *Recorder) KickLocal(ns, connKey, claimKey string) bool {
	r.mu.Lock()
	r.kicked = append(r.kicked, ns+"/"+connKey+"/"+claimKey)
	r.note()
	r.mu.Unlock()
	return true
}

// Orphaned implements engine.Local.
func (r *Recorder) Orphaned(o engine.Orphan) {
	r.mu.Lock()
	r.orphans = append(r.orphans, o)
	r.note()
	r.mu.Unlock()
}

// Fenced implements engine.Local.
func (r *Recorder) Fenced() {
	r.mu.Lock()
	r.fenced++
	r.note()
	r.mu.Unlock()
}

// Deliveries returns a copy of what was delivered so far.
func (r *Recorder) Deliveries() []engine.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.deliveries)
}

// Terminated returns the "ns/user" terminations so far.
func (r *Recorder) Terminated() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.terminated)
}

// Kicked returns the "ns/conn/claim" kicks so far.
func (r *Recorder) Kicked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.kicked)
}

// Orphans returns the orphaned transitions so far.
func (r *Recorder) Orphans() []engine.Orphan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.orphans)
}

// FencedCount is how many times the node was fenced.
func (r *Recorder) FencedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fenced
}

// WaitFor blocks until cond holds (checked after every event) or the
// deadline passes, and fails the test then. It waits on events, not on a
// polling sleep.
func (r *Recorder) WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// WaitForAll is WaitFor when cond looks at several recorders: it is
// checked after an event on any of them (waiting on one recorder alone
// would sleep until the deadline when the last event lands on another).
func WaitForAll(t testing.TB, rs []*Recorder, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		cases := make([]reflect.SelectCase, 0, len(rs)+1)
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)})
		for _, r := range rs {
			r.mu.Lock()
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.changed)})
			r.mu.Unlock()
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			if cond() {
				return
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
