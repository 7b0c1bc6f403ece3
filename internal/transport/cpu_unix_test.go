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

// threadCPU is the calling OS thread's user+system CPU time in
// nanoseconds, where the platform measures it per thread (Linux), else
// the process's. The caller has locked its goroutine to the thread. The
// kernel charges loopback TCP's receive processing, done within the
// sender's write, to the sender's thread; the readers' own wake-ups and
// reads, on other threads, are not in it.
func threadCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return processCPU(b)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
