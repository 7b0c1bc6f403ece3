//go:build unix

package transport

import (
	"syscall"
	"testing"
)

// processCPU is the process's user+system CPU time in nanoseconds. The
// readers' share is the same in every benchmark here, so differences
// between them are the sending side's.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
