package redisengine

import (
	"sync"
	"testing"
	"time"
)

// testMetrics records what an engine reports, and lets a test wait for it.
type testMetrics struct {
	mu         sync.Mutex
	changed    chan struct{}
	published  []int64
	ops        map[string]int
	failed     map[string]int
	heartbeats int // successful ones (each reports Nodes)
	fenced     int
}

func newTestMetrics() *testMetrics {
	return &testMetrics{changed: make(chan struct{}), ops: map[string]int{}, failed: map[string]int{}}
}

func (m *testMetrics) note() { close(m.changed); m.changed = make(chan struct{}) }

func (m *testMetrics) Published(n int64) {
	m.mu.Lock()
	m.published = append(m.published, n)
	m.note()
	m.mu.Unlock()
}

func (m *testMetrics) StoreOp(op string, err error) {
	m.mu.Lock()
	if err != nil {
		m.failed[op]++
	} else {
		m.ops[op]++
	}
	m.note()
	m.mu.Unlock()
}

func (m *testMetrics) Reaped(string, int) {}

func (m *testMetrics) Nodes(int) {
	m.mu.Lock()
	m.heartbeats++
	m.note()
	m.mu.Unlock()
}

func (m *testMetrics) Fenced() {
	m.mu.Lock()
	m.fenced++
	m.note()
	m.mu.Unlock()
}

func (m *testMetrics) snapshot(f func(m *testMetrics) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(m)
}

// waitFor blocks until cond holds, woken by every report.
func (m *testMetrics) waitFor(t *testing.T, d time.Duration, what string, cond func(m *testMetrics) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		ok, ch := cond(m), m.changed
		m.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
