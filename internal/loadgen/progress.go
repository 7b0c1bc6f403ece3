package loadgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal), where a
// self-overwriting progress line makes sense; in logs and pipes it would be
// noise.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints status() once a second on one overwritten line until ctx
// ends, then clears the line.
func progress(ctx context.Context, w io.Writer, clock *Clock, status func() string) {
	if w == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		// The progress line is a courtesy on a terminal: a failed write
		// must not stop or fail the run.
		case <-ctx.Done():
			_, _ = fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			_, _ = fmt.Fprintf(w, "\r\033[K%6.1fs %s", time.Duration(clock.Now()).Seconds(), status())
		}
	}
}
