package loadgen

import (
	"math"
	"runtime"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 10 minutes at 3 significant digits (0.1 %
// precision), ~170 KB per histogram. Values above the top are clamped and
// counted so a pathological run is visible rather than dropped.
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

// Recorder is a concurrency-safe latency histogram. Receivers on many
// goroutines record into one of a few shards (each with its own lock) so
// that a fan-out burst does not serialise on a single mutex; Snapshot
// merges them.
type Recorder struct {
	shards []recShard
}

type recShard struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram
	clamped int64
	lastNs  int64 // clock ns of the latest record, for delivery-rate windows
	_       [40]byte
}

// NewRecorder makes a recorder with a shard count suited to GOMAXPROCS.
func NewRecorder() *Recorder {
	n := min(max(2*runtime.GOMAXPROCS(0), 2), 16)
	r := &Recorder{shards: make([]recShard, n)}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(histLowest, histHighest, histSigFigs)
	}
	return r
}

// Record adds one latency. hint spreads callers over shards (a connection
// id is ideal: stable per goroutine). now is the clock ns of the event.
func (r *Recorder) Record(hint int, d time.Duration, now int64) {
	us := int64(d / time.Microsecond)
	s := &r.shards[uint(hint)%uint(len(r.shards))]
	s.mu.Lock()
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
		s.clamped++
	}
	_ = s.h.RecordValue(us)
	if now > s.lastNs {
		s.lastNs = now
	}
	s.mu.Unlock()
}

// Snapshot returns a merged copy of all shards plus the latest record time
// and the number of clamped values.
func (r *Recorder) Snapshot() (h *hdrhistogram.Histogram, lastNs int64, clamped int64) {
	h = hdrhistogram.New(histLowest, histHighest, histSigFigs)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		h.Merge(s.h)
		lastNs = max(lastNs, s.lastNs)
		clamped += s.clamped
		s.mu.Unlock()
	}
	return h, lastNs, clamped
}

// Count is the number of values recorded so far.
func (r *Recorder) Count() int64 {
	var n int64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += s.h.TotalCount()
		s.mu.Unlock()
	}
	return n
}

// Latency is a percentile summary in milliseconds (floats, so JSON readers
// get sub-millisecond precision without unit juggling).
type Latency struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summarize turns a histogram of microseconds into a Latency.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	return Latency{
		Count:  h.TotalCount(),
		MeanMs: math.Round(h.Mean()) / 1000,
		P50Ms:  ms(h.ValueAtQuantile(50)),
		P90Ms:  ms(h.ValueAtQuantile(90)),
		P99Ms:  ms(h.ValueAtQuantile(99)),
		P999Ms: ms(h.ValueAtQuantile(99.9)),
		MaxMs:  ms(h.Max()),
	}
}

// Summary is Summarize(Snapshot()).
func (r *Recorder) Summary() Latency {
	h, _, _ := r.Snapshot()
	return Summarize(h)
}
