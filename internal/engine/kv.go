package engine

import (
	"context"
	"time"
)

// KV keeps small short-lived values cluster-wide: single-use tickets,
// per-key tokens, replay windows and rate-limit counters (Talo). Every
// value expires after its ttl; operations on one key are atomic across the
// cluster. Engines implement it next to Engine; a protocol that needs it
// asks for it where it is built.
type KV interface {
	// KVSet stores value under key for ttl, replacing any value.
	KVSet(ctx context.Context, namespace, key string, value []byte, ttl time.Duration) error
	// KVSetNX stores value only if key is absent (or expired) and
	// reports whether it did: of concurrent callers exactly one gets true.
	KVSetNX(ctx context.Context, namespace, key string, value []byte, ttl time.Duration) (bool, error)
	// KVGet reads a live value.
	KVGet(ctx context.Context, namespace, key string) (value []byte, ok bool, err error)
	// KVTake reads and deletes a live value in one step: of concurrent
	// callers exactly one gets ok (a single-use ticket stays single-use).
	KVTake(ctx context.Context, namespace, key string) (value []byte, ok bool, err error)
	// KVDelete removes key.
	KVDelete(ctx context.Context, namespace, key string) error
	// KVIncr adds 1 to a counter and returns the new value; a counter
	// that did not exist starts a window of ttl, after which it is gone
	// (a fixed-window rate limit).
	KVIncr(ctx context.Context, namespace, key string, ttl time.Duration) (int64, error)
}
