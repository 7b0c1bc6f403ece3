package memory

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

var _ engine.KV = (*Engine)(nil)

// kvEntry is one live value; counters keep their count in n.
type kvEntry struct {
	value   []byte
	n       int64
	expires time.Time
}

// kvLive returns the live entry under k, dropping an expired one; kvMu held.
func (e *Engine) kvLive(k key) (kvEntry, bool) {
	ent, ok := e.kv[k]
	if ok && !e.now().Before(ent.expires) {
		delete(e.kv, k)
		return kvEntry{}, false
	}
	return ent, ok
}

// KVSet implements engine.KV.
func (e *Engine) KVSet(_ context.Context, ns, k string, v []byte, ttl time.Duration) error {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	e.kv[key{ns, k}] = kvEntry{value: slices.Clone(v), expires: e.now().Add(ttl)}
	return nil
}

// KVSetNX implements engine.KV.
func (e *Engine) KVSetNX(_ context.Context, ns, k string, v []byte, ttl time.Duration) (bool, error) {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	if _, ok := e.kvLive(key{ns, k}); ok {
		return false, nil
	}
	e.kv[key{ns, k}] = kvEntry{value: slices.Clone(v), expires: e.now().Add(ttl)}
	return true, nil
}

// KVGet implements engine.KV.
func (e *Engine) KVGet(_ context.Context, ns, k string) ([]byte, bool, error) {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	ent, ok := e.kvLive(key{ns, k})
	if !ok {
		return nil, false, nil
	}
	return e.kvValue(ent), true, nil
}

// KVTake implements engine.KV.
func (e *Engine) KVTake(_ context.Context, ns, k string) ([]byte, bool, error) {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	ent, ok := e.kvLive(key{ns, k})
	if !ok {
		return nil, false, nil
	}
	delete(e.kv, key{ns, k})
	return e.kvValue(ent), true, nil
}

// KVDelete implements engine.KV.
func (e *Engine) KVDelete(_ context.Context, ns, k string) error {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	delete(e.kv, key{ns, k})
	return nil
}

// KVIncr implements engine.KV.
func (e *Engine) KVIncr(_ context.Context, ns, k string, ttl time.Duration) (int64, error) {
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	ent, ok := e.kvLive(key{ns, k})
	if !ok {
		ent = kvEntry{expires: e.now().Add(ttl)}
	}
	ent.n++
	ent.value = nil
	e.kv[key{ns, k}] = ent
	return ent.n, nil
}

// kvValue is a copy of a stored value; a counter reads as its decimal
// text, as Redis would answer.
func (e *Engine) kvValue(ent kvEntry) []byte {
	if ent.value == nil && ent.n != 0 {
		return strconv.AppendInt(nil, ent.n, 10)
	}
	return slices.Clone(ent.value)
}

func (e *Engine) sweepKV() {
	now := e.now()
	e.kvMu.Lock()
	defer e.kvMu.Unlock()
	for k, ent := range e.kv {
		if !now.Before(ent.expires) {
			delete(e.kv, k)
		}
	}
}
