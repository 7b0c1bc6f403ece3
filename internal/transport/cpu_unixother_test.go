//go:build unix && !linux

package transport

import "syscall"

// rusageThread: no per-thread figure here; threadCPU reads the process's.
const rusageThread = syscall.RUSAGE_SELF
