package redisengine

import (
	"os"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/redistest"
)

// shared is one redis-server for the package's tests; each cluster uses
// its own key prefix on it.
var shared redistest.Shared

func sharedRedis(t *testing.T) *redistest.Server { return shared.Get(t) }

// benchRedis is sharedRedis for benchmarks.
func benchRedis(b *testing.B) *redistest.Server { return shared.Get(b) }

// startRedis starts a server of the test's own (for restarts), killed when
// t ends.
func startRedis(t *testing.T) *redistest.Server { return redistest.Start(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}
