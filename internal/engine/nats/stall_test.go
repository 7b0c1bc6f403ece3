package natsengine

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// TestLeaderCrashStall measures how long state writes stall when the node
// hosting the state stream's leader crashes, and how long until its
// orphans are handed out. Slow (up to ~15 s), so opt-in:
//
//	SB_NATS_STALL=1 go test -run LeaderCrashStall -v ./internal/engine/nats/
func TestLeaderCrashStall(t *testing.T) {
	if os.Getenv("SB_NATS_STALL") == "" {
		t.Skip("set SB_NATS_STALL=1 to measure")
	}
	p := startEmbeddedCluster(t)
	locals := threeRecorders()
	p.cluster(t, locals)
	ctx := context.Background()
	st, err := p.engines[0].js.Stream(ctx, p.engines[0].n.stateStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i, e := range p.engines {
		if e.o.NodeName == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("leader %q not found", info.Cluster.Leader)
	}
	live := p.engines[(leader+1)%3]
	if _, err := p.engines[leader].Occupancy(ctx, "s", "ch", 1); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	p.engines[leader].crash()
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		_, err := live.Occupancy(c, "s", "other", 1)
		cancel()
		if err == nil {
			break
		}
	}
	t.Logf("state writes stalled %v after the stream leader crashed", time.Since(crashed))
	survivors := []*enginetest.Recorder{locals[(leader+1)%3], locals[(leader+2)%3]}
	enginetest.WaitForAny(t, survivors, 30*time.Second, "orphan", func() bool { return len(survivors[0].Orphans())+len(survivors[1].Orphans()) > 0 })
	t.Logf("orphans handed out %v after the crash (node timeout %v)", time.Since(crashed), testNodeTimeout)
}
