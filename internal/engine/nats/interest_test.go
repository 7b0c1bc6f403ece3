package natsengine

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// noDeadline is a caller's context without a deadline, as a Pusher
// session's is: it lasts as long as the connection.
type noDeadline struct{ context.Context }

// TestInterestReachesEveryServerBeforeReturning: when Interest returns,
// every other node's NATS server already routes the channel to this node,
// so a publish there right after a subscription_succeeded is delivered.
// The caller's context has no deadline, which nats.go's flush refuses:
// Interest used to skip its flush and barrier then.
func TestInterestReachesEveryServerBeforeReturning(t *testing.T) {
	p := startEmbeddedCluster(t)
	p.cluster(t, threeRecorders())
	// The barrier waits for the peers this node has seen beat: wait until
	// it has seen both.
	sub := p.engines[2]
	for deadline := time.Now().Add(10 * time.Second); ; {
		sub.hb.mu.Lock()
		n := len(sub.hb.seen)
		sub.hb.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 saw %d nodes, want 3", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx := noDeadline{context.Background()}
	var slowest time.Duration
	for i := range 20 {
		ch := fmt.Sprintf("private-fresh-%d", i)
		start := time.Now()
		if err := sub.Interest(ctx, "app", ch, true); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
		subj := p.engines[0].n.dataSubject("app", ch)
		for n, e := range p.engines[:2] {
			if !e.srv.GlobalAccount().SubscriptionInterest(subj) {
				t.Fatalf("channel %d: node %d's server had no interest in %s when Interest returned on node 2", i, n, subj)
			}
		}
	}
	t.Logf("slowest first subscribe (flush and barrier): %v", slowest)
}
