package loadgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal), where a
// self-overwriting progress line makes sense; in logs and pipes it would be
// noise, so there the status is printed as ordinary lines, less often.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// DefaultProgressEvery is how often a progress line is printed when it is
// not overwritten in place (a log file, a pipe): often enough that a long
// ramp shows it is alive, rarely enough that the log stays readable.
const DefaultProgressEvery = 10 * time.Second

// progress prints status() every interval until ctx ends. On a terminal
// (lines false) it overwrites one line every interval and clears it at the
// end; otherwise each status is its own line.
func progress(ctx context.Context, w io.Writer, clock *Clock, every time.Duration, lines bool, status func() string) {
	if w == nil {
		return
	}
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		// The progress line is a courtesy: a failed write must not stop or
		// fail the run.
		case <-ctx.Done():
			if !lines {
				_, _ = fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
			s := time.Duration(clock.Now()).Seconds()
			if lines {
				_, _ = fmt.Fprintf(w, "progress %7.1fs %s\n", s, status())
			} else {
				_, _ = fmt.Fprintf(w, "\r\033[K%6.1fs %s", s, status())
			}
		}
	}
}

// liveStep is the step being measured, for the progress line: every
// scenario with rate steps reports the same figures so far (offered rate,
// deliveries/s, p99) through it.
type liveStep struct {
	index, total int
	name         string
	rate         float64
	st           *stepStats
	startNs      int64
	// endNs is set when the step has been measured (0 while it runs):
	// between steps the line shows the finished step, not a decaying rate.
	endNs atomic.Int64
}

// stepProgress tracks the current step of a run.
type stepProgress struct{ cur atomic.Pointer[liveStep] }

func (p *stepProgress) set(s *liveStep) { p.cur.Store(s) }

// status describes the current step so far, or "" before the first one.
func (p *stepProgress) status(now int64) string {
	s := p.cur.Load()
	if s == nil {
		return ""
	}
	st := s.st
	got := st.rec.Count()
	state := "so far"
	if end := s.endNs.Load(); end > 0 {
		now, state = end, "(step done)"
	}
	rate := 0.0
	if el := time.Duration(now - s.startNs).Seconds(); el > 0 {
		rate = float64(got) / el
	}
	step := s.name
	if s.total > 1 {
		step = fmt.Sprintf("%d/%d %s", s.index+1, s.total, s.name)
	}
	return fmt.Sprintf("step %s: offered %.0f/s, sent %d, %.0f deliveries/s, p99 %.2fms %s, received %d/%d, send errors %d",
		step, s.rate, st.sent.Load(), rate, st.rec.Summary().P99Ms, state, got, st.expected.Load(), st.sendErrors.Load())
}
