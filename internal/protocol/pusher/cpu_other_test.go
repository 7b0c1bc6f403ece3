//go:build !unix

package pusher

import "testing"

// processCPU is not measured here: cpu-ns/delivery then reads 0.
func processCPU(*testing.B) int64 { return 0 }
