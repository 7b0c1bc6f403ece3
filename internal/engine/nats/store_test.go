package natsengine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A state request that is never answered (it reached a stream leader as
// the leader stepped down: a node leaving the cluster) is sent again after
// storeAttemptTimeout, instead of waiting out the caller's deadline. On a
// 3-node NATS cluster, one rolling SIGTERM in three took 5.1-5.7 s to see
// its clients resubscribed before (tests/cluster/rolling.test.mjs).
func TestAnUnansweredStoreRequestIsSentAgain(t *testing.T) {
	e := &Engine{o: Options{NodeTimeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls := 0
	start := time.Now()
	err := e.retryTransient(ctx, func() error {
		return oneRequest(ctx, func(ctx context.Context) error {
			calls++
			if calls == 1 {
				<-ctx.Done() // no answer ever comes
				return ctx.Err()
			}
			return nil
		})
	})
	if err != nil || calls != 2 {
		t.Fatalf("err %v after %d requests, want success on the second", err, calls)
	}
	if took := time.Since(start); took < storeAttemptTimeout || took > storeAttemptTimeout+time.Second {
		t.Fatalf("took %v, want about storeAttemptTimeout (%v)", took, storeAttemptTimeout)
	}
}

// The caller's own deadline still ends the tries, with its own error.
func TestTheCallersDeadlineEndsTheTries(t *testing.T) {
	e := &Engine{o: Options{NodeTimeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), storeAttemptTimeout+storeAttemptTimeout/2)
	defer cancel()
	calls := 0
	err := e.retryTransient(ctx, func() error {
		return oneRequest(ctx, func(ctx context.Context) error {
			calls++
			<-ctx.Done()
			return ctx.Err()
		})
	})
	if !errors.Is(err, context.DeadlineExceeded) || calls != 2 {
		t.Fatalf("err %v after %d requests, want the caller's deadline after 2", err, calls)
	}
}
