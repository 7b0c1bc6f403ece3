package redisengine

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

var _ engine.KV = (*Engine)(nil)

// incrWindow starts a counter's window on its first increment: INCR and
// PEXPIRE in one step, so a counter never outlives its window (a crash
// between the two would leave it forever).
var incrWindow = rueidis.NewLuaScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

func (k keys) kv(ns, key string) string { return k.prefix + "kv:" + tag(ns, key) }

func ttlMS(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

// KVSet implements engine.KV.
func (e *Engine) KVSet(ctx context.Context, ns, key string, v []byte, ttl time.Duration) error {
	return e.do(ctx, "kv_set", e.client.B().Set().Key(e.k.kv(ns, key)).Value(rueidis.BinaryString(v)).PxMilliseconds(ttlMS(ttl)).Build()).Error()
}

// KVSetNX implements engine.KV: SET NX PX, atomic in Redis.
func (e *Engine) KVSetNX(ctx context.Context, ns, key string, v []byte, ttl time.Duration) (bool, error) {
	err := e.do(ctx, "kv_setnx", e.client.B().Set().Key(e.k.kv(ns, key)).Value(rueidis.BinaryString(v)).Nx().PxMilliseconds(ttlMS(ttl)).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

// KVGet implements engine.KV.
func (e *Engine) KVGet(ctx context.Context, ns, key string) ([]byte, bool, error) {
	return bytesOrMiss(e.do(ctx, "kv_get", e.client.B().Get().Key(e.k.kv(ns, key)).Build()))
}

// KVTake implements engine.KV: GETDEL (Redis 6.2+), one atomic step.
func (e *Engine) KVTake(ctx context.Context, ns, key string) ([]byte, bool, error) {
	return bytesOrMiss(e.do(ctx, "kv_take", e.client.B().Getdel().Key(e.k.kv(ns, key)).Build()))
}

// KVDelete implements engine.KV.
func (e *Engine) KVDelete(ctx context.Context, ns, key string) error {
	return e.do(ctx, "kv_delete", e.client.B().Del().Key(e.k.kv(ns, key)).Build()).Error()
}

// KVIncr implements engine.KV.
func (e *Engine) KVIncr(ctx context.Context, ns, key string, ttl time.Duration) (int64, error) {
	n, err := incrWindow.Exec(ctx, e.client, []string{e.k.kv(ns, key)}, []string{strconv.FormatInt(ttlMS(ttl), 10)}).AsInt64()
	e.metrics.StoreOp("kv_incr", err)
	return n, err
}

func bytesOrMiss(res rueidis.RedisResult) ([]byte, bool, error) {
	b, err := res.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
