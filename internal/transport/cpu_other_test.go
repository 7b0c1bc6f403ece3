//go:build !unix

package transport

import "testing"

// processCPU is not measured here: cpu-ns/delivery then reads 0.
func processCPU(*testing.B) int64 { return 0 }
