package natsengine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CacheSet implements engine.Cache: one message per channel subject in a
// stream that keeps the last message per subject and expires it by its own
// TTL (NATS >= 2.11). JetStream TTLs have a one-second floor.
func (e *Engine) CacheSet(ctx context.Context, ns, channel string, payload []byte, ttl time.Duration) error {
	ttl = max(ttl, time.Second)
	_, err := e.js.Publish(ctx, e.n.cacheSubject(ns, channel), payload, jetstream.WithMsgTTL(ttl))
	e.obs.StoreOp("cache_set", false, err)
	if err != nil {
		return fmt.Errorf("natsengine: cache set: %w", err)
	}
	return nil
}

// CacheGet implements engine.Cache. The remaining lifetime is the message's
// TTL minus its age by the store's timestamp (clocks across machines are
// assumed close; the result is clamped to (0, ttl]).
func (e *Engine) CacheGet(ctx context.Context, ns, channel string) ([]byte, time.Duration, bool, error) {
	m, err := e.cache.GetLastMsgForSubject(ctx, e.n.cacheSubject(ns, channel))
	e.obs.StoreOp("cache_get", false, err)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("natsengine: cache get: %w", err)
	}
	ttl, err := time.ParseDuration(m.Header.Get(jetstream.MsgTTLHeader))
	if err != nil {
		return nil, 0, false, nil // not written by CacheSet: treat as a miss
	}
	left := ttl - time.Since(m.Time)
	if left <= 0 {
		return nil, 0, false, nil // expired, not yet removed
	}
	return m.Data, min(left, ttl), true, nil
}
