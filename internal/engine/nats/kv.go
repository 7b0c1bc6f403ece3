package natsengine

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

var _ engine.KV = (*Engine)(nil)

// engine.KV lives in the state bucket under k.<ns>.<key>. Every value is
// written with Create and a per-key TTL (the server removes it when it
// expires; a TTL can only be given to Create, ADR-48), and carries its own
// expiry time in front, so a read never returns a value the server has
// not removed yet. Set replaces by purge-then-create; Take is a purge
// with the revision just read, so of two concurrent takers only one
// succeeds; SetNX and a counter's first increment are a Create, which only
// one writer wins.

func kvKey(ns, k string) string { return "k." + tok(ns) + "." + tok(k) }

// kvTTLFloor: the server's per-message TTL has a one-second floor.
const kvTTLFloor = time.Second

func encodeKV(expires time.Time, v []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(v)), uint64(expires.UnixMilli()))
	return append(b, v...)
}

// decodeKV returns a stored value, or ok false if it has expired.
func decodeKV(raw []byte, now time.Time) (v []byte, expires time.Time, ok bool) {
	if len(raw) < 8 {
		return nil, time.Time{}, false
	}
	expires = time.UnixMilli(int64(binary.BigEndian.Uint64(raw)))
	if !now.Before(expires) {
		return nil, expires, false
	}
	return raw[8:], expires, true
}

func serverTTL(ttl time.Duration) time.Duration { return max(ttl, kvTTLFloor) }

// kvCreate writes a fresh value with its TTL; it fails with a conflict if
// the key holds a value (live, or expired but not yet removed).
func (e *Engine) kvCreate(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	_, err := e.kv.Create(ctx, key, encodeKV(time.Now().Add(ttl), v), jetstream.KeyTTL(serverTTL(ttl)))
	e.obs.StoreOp("kv_create", err != nil && isConflict(err), nilIfConflict(err))
	return err
}

func nilIfConflict(err error) error {
	if err != nil && isConflict(err) {
		return nil
	}
	return err
}

// kvPurge removes the value at revision rev (0: whatever is there).
func (e *Engine) kvPurge(ctx context.Context, key string, rev uint64) error {
	opts := []jetstream.KVDeleteOpt{jetstream.PurgeTTL(markerTTL)}
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := e.kv.Purge(ctx, key, opts...)
	e.obs.StoreOp("kv_purge", err != nil && isConflict(err), nilIfConflict(err))
	return err
}

// KVSet implements engine.KV.
func (e *Engine) KVSet(ctx context.Context, ns, k string, v []byte, ttl time.Duration) error {
	key := kvKey(ns, k)
	for {
		_, rev, found, err := e.read(ctx, key)
		if err != nil {
			return err
		}
		if found {
			if err := e.kvPurge(ctx, key, rev); err != nil && !isConflict(err) {
				return err
			}
		}
		err = e.kvCreate(ctx, key, v, ttl)
		if err == nil || !isConflict(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// KVSetNX implements engine.KV.
func (e *Engine) KVSetNX(ctx context.Context, ns, k string, v []byte, ttl time.Duration) (bool, error) {
	key := kvKey(ns, k)
	raw, rev, found, err := e.read(ctx, key)
	if err != nil {
		return false, err
	}
	if found {
		if _, _, live := decodeKV(raw, time.Now()); live {
			return false, nil
		}
		// Expired but not yet removed by the server: clear it first; a
		// conflict means another writer got there, and Create decides.
		if err := e.kvPurge(ctx, key, rev); err != nil && !isConflict(err) {
			return false, err
		}
	}
	switch err := e.kvCreate(ctx, key, v, ttl); {
	case err == nil:
		return true, nil
	case isConflict(err):
		return false, nil
	default:
		return false, err
	}
}

// KVGet implements engine.KV.
func (e *Engine) KVGet(ctx context.Context, ns, k string) ([]byte, bool, error) {
	raw, _, found, err := e.read(ctx, kvKey(ns, k))
	if err != nil || !found {
		return nil, false, err
	}
	v, _, live := decodeKV(raw, time.Now())
	return v, live, nil
}

// KVTake implements engine.KV.
func (e *Engine) KVTake(ctx context.Context, ns, k string) ([]byte, bool, error) {
	key := kvKey(ns, k)
	for {
		raw, rev, found, err := e.read(ctx, key)
		if err != nil || !found {
			return nil, false, err
		}
		v, _, live := decodeKV(raw, time.Now())
		if !live {
			return nil, false, nil
		}
		switch err := e.kvPurge(ctx, key, rev); {
		case err == nil:
			return v, true, nil
		case !isConflict(err):
			return nil, false, err
		}
		// Another writer changed it since the read: look again (a taker
		// that won leaves nothing to take).
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
	}
}

// KVDelete implements engine.KV.
func (e *Engine) KVDelete(ctx context.Context, ns, k string) error {
	err := e.kvPurge(ctx, kvKey(ns, k), 0)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// KVIncr implements engine.KV.
func (e *Engine) KVIncr(ctx context.Context, ns, k string, ttl time.Duration) (int64, error) {
	key := kvKey(ns, k)
	for {
		raw, rev, found, err := e.read(ctx, key)
		if err != nil {
			return 0, err
		}
		now := time.Now()
		v, expires, live := decodeKV(raw, now)
		if !live {
			if found {
				if err := e.kvPurge(ctx, key, rev); err != nil && !isConflict(err) {
					return 0, err
				}
			}
			err := e.kvCreate(ctx, key, []byte("1"), ttl)
			if err == nil {
				return 1, nil
			}
			if !isConflict(err) {
				return 0, err
			}
			continue
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		n++
		// A compare-and-set publish that keeps the window's expiry, with
		// the time left as the message's TTL (a KV Update cannot carry one).
		_, err = e.js.Publish(ctx, e.n.kvPrefix+key, encodeKV(expires, strconv.AppendInt(nil, n, 10)),
			jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(serverTTL(expires.Sub(now))))
		e.obs.StoreOp("kv_update", err != nil && isConflict(err), nilIfConflict(err))
		if err == nil {
			return n, nil
		}
		if !isConflict(err) {
			return 0, err
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}
