//go:build unix

package pusher

import (
	"syscall"
	"testing"
)

// processCPU is the process's user+system CPU time in nanoseconds: the
// server's and, since the benchmark's clients run in the same process, the
// clients' reading too.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
