package natsengine

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The state bucket's keys (tokens are tok()-encoded):
//
//	o.<ns>.<channel>   occupancy: {node id: that node's count}
//	p.<ns>.<channel>   presence: {user id: {info, node ids}}; one key per
//	                   channel so the member limit is checked atomically
//	u.<ns>.<user>      signed-in user: node ids with a connection
//	c.<ns>.<key>       claim: {conn, node}
//	n.<node id>        node record, rewritten every heartbeat
//	r.<node id>        reap lock (expires by per-message TTL)
//
// markerTTL is how long the marker of a deleted key lives.
const markerTTL = time.Minute

func occKey(ns, ch string) string  { return "o." + tok(ns) + "." + tok(ch) }
func presKey(ns, ch string) string { return "p." + tok(ns) + "." + tok(ch) }
func userKey(ns, u string) string  { return "u." + tok(ns) + "." + tok(u) }
func claimKey(ns, k string) string { return "c." + tok(ns) + "." + tok(k) }
func nodeKey(id string) string     { return "n." + id }
func reapKey(id string) string     { return "r." + id }

// splitKey returns a state key's kind and decoded namespace and name.
func splitKey(k string) (kind, ns, name string, ok bool) {
	parts := strings.Split(k, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	ns, ok1 := untok(parts[1])
	name, ok2 := untok(parts[2])
	return parts[0], ns, name, ok1 && ok2
}

// ensureStreams creates or binds the state bucket and the cache stream.
// The bucket is a KV bucket created as a stream so that AllowDirect is
// off: direct gets may be answered by a replica that has not applied the
// latest commit yet (nats-server#4710), and the exact transitions read
// before they write. Every read goes to the stream leader instead.
func (e *Engine) ensureStreams(ctx context.Context) error {
	if _, err := e.js.CreateOrUpdateStream(ctx, e.stateStreamConfig()); err != nil {
		return err
	}
	var err error
	if e.kv, err = e.js.KeyValue(ctx, e.n.bucket); err != nil {
		return err
	}
	e.cache, err = e.js.CreateOrUpdateStream(ctx, e.cacheStreamConfig())
	return err
}

func (e *Engine) stateStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              e.n.stateStream,
		Subjects:          []string{e.n.kvPrefix + ">"},
		Storage:           jetstream.MemoryStorage,
		Replicas:          e.o.Replicas,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		AllowRollup:       true,
		DenyDelete:        true,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		AllowMsgTTL:       true, // reap locks expire
		AllowDirect:       false,
	}
}

func (e *Engine) cacheStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              e.n.cacheStream,
		Subjects:          []string{e.n.cachePrefix + ">"},
		Storage:           jetstream.MemoryStorage,
		Replicas:          e.o.Replicas,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxConsumers:      -1,
		Discard:           jetstream.DiscardOld,
		AllowMsgTTL:       true,
		AllowDirect:       false,
	}
}

// storeLost reports whether the state stream is gone (an external NATS
// server restarted: the streams live in memory), after creating both
// streams again. The handles in e.kv and e.cache name the streams, so
// they work on the new ones unchanged. Every node's record went with the
// old stream: the caller fences.
func (e *Engine) storeLost() bool {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	_, err := e.js.Stream(ctx, e.n.stateStream)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false
	}
	e.log.Warn("the state stream is gone (the NATS server lost its data); creating it again and rejoining")
	if _, err := e.js.CreateOrUpdateStream(ctx, e.stateStreamConfig()); err != nil {
		e.log.Warn("creating the state stream again", "err", err)
		return false
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, e.cacheStreamConfig()); err != nil {
		e.log.Warn("creating the cache stream again", "err", err)
	}
	return true
}

// read returns key's value and revision; found is false for a missing or
// deleted key.
func (e *Engine) read(ctx context.Context, key string) (val []byte, rev uint64, found bool, err error) {
	var ent jetstream.KeyValueEntry
	err = e.retryTransient(ctx, func() error {
		return oneRequest(ctx, func(ctx context.Context) error {
			ent, err = e.kv.Get(ctx, key)
			return err
		})
	})
	switch {
	case err == nil:
		e.obs.StoreOp("get", false, nil)
		return ent.Value(), ent.Revision(), true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		// An absent key is an answer, not a failed operation.
		e.obs.StoreOp("get", false, nil)
		return nil, 0, false, nil
	}
	e.obs.StoreOp("get", false, err)
	return nil, 0, false, err
}

// mutate applies f to key's current value and writes the result with a
// compare-and-set on the revision it read, retrying from a fresh read
// until a write wins. f must be a pure function of its input (it runs
// again on every retry) and returns the new value (nil: delete the key)
// and whether to write at all.
func (e *Engine) mutate(ctx context.Context, key string, f func(cur []byte, found bool) (next []byte, write bool, err error)) error {
	var transientSince time.Time
	for attempt := 0; ; attempt++ {
		cur, rev, found, err := e.read(ctx, key)
		if err != nil {
			return err
		}
		next, write, err := f(cur, found)
		if err != nil || !write {
			return err
		}
		var op string
		switch {
		case next == nil && !found:
			return nil
		case next == nil:
			// A purge whose marker expires: the key leaves no trace, so
			// a channel that was ever used costs nothing once empty.
			op = "delete"
			err = oneRequest(ctx, func(ctx context.Context) error {
				return e.kv.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
			})
		case found:
			op = "update"
			err = oneRequest(ctx, func(ctx context.Context) error {
				_, err := e.kv.Update(ctx, key, next, rev)
				return err
			})
		default:
			op = "create"
			err = oneRequest(ctx, func(ctx context.Context) error {
				_, err := e.kv.Create(ctx, key, next)
				return err
			})
		}
		if err == nil {
			e.obs.StoreOp(op, false, nil)
			return nil
		}
		if !isConflict(err) {
			e.obs.StoreOp(op, false, err)
			if isTransient(err) && e.waitTransient(ctx, &transientSince) {
				continue // a leader election: read again once it is over
			}
			return err
		}
		e.obs.StoreOp(op, true, nil)
		if attempt > 2 {
			// Many writers on one key: spread the retries out.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(rand.IntN(2000*min(attempt, 10))) * time.Microsecond):
			}
		}
	}
}

// isConflict reports a lost compare-and-set. nats.go maps both the
// single-replica code (10071) and the replicated one (10164) to
// ErrKeyRevisionMismatch/ErrKeyExists; the codes are checked too so a
// client that maps only one still retries instead of failing.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// keys lists the live keys under a key filter (e.g. "o.<ns>.>"), asking
// the stream leader (stream info with a subject filter), so a scan sees
// every write acknowledged before it.
func (e *Engine) keys(ctx context.Context, filter string) ([]string, error) {
	st, err := e.js.Stream(ctx, e.n.stateStream)
	if err == nil {
		var info *jetstream.StreamInfo
		info, err = st.Info(ctx, jetstream.WithSubjectFilter(e.n.kvPrefix+filter))
		if err == nil {
			out := make([]string, 0, len(info.State.Subjects))
			for s := range info.State.Subjects {
				out = append(out, strings.TrimPrefix(s, e.n.kvPrefix))
			}
			e.obs.StoreOp("scan", false, nil)
			return out, nil
		}
	}
	e.obs.StoreOp("scan", false, err)
	return nil, err
}

// storeAttemptTimeout bounds one request of a state read or write. A
// request that reached a stream leader as it stepped down (a node leaving
// the cluster) is never answered; without this bound it waited out the
// caller's whole deadline, or nats.go's 5 s default, and a subscribe on
// another node failed after 5 s: one node's SIGTERM in three took 5.1-
// 5.8 s, not 1.0-1.3 s, to see its clients resubscribed elsewhere
// (tests/cluster/rolling.test.mjs on NATS). A healthy cluster answers
// in milliseconds. Retrying a write that did land is harmless: mutate's
// functions set this node's own share of a value, and a CAS on a stale
// revision is a conflict, which reads again.
const storeAttemptTimeout = time.Second

// errAttemptTimeout is an unanswered state request (storeAttemptTimeout):
// transient, as the leader it went to may be gone.
var errAttemptTimeout = errors.New("natsengine: store request unanswered")

// oneRequest runs one store request under storeAttemptTimeout.
func oneRequest(ctx context.Context, op func(context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
	defer cancel()
	err := op(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return errAttemptTimeout
	}
	return err
}

// isTransient reports an error JetStream gives while its cluster is
// electing a leader or a peer is catching up (503 "JetStream system
// temporarily unavailable", a request with no responder or no answer yet):
// the same operation succeeds once that is over, 4-9 s at worst.
func isTransient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && api.Code == 503 {
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, errAttemptTimeout)
}

// waitTransient sleeps before another try of an operation that failed
// transiently, and reports false once it has been failing for NodeTimeout
// (since *since, set on the first failure) or ctx ended: a caller then
// gets the error instead of waiting on a store that is really gone.
func (e *Engine) waitTransient(ctx context.Context, since *time.Time) bool {
	now := time.Now()
	if since.IsZero() {
		*since = now
	}
	elapsed := now.Sub(*since)
	if elapsed >= e.o.NodeTimeout {
		return false
	}
	backoff := min(10*time.Millisecond<<min(int(elapsed/(50*time.Millisecond)), 6), 500*time.Millisecond)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(backoff):
		return true
	}
}

// retryTransient runs op until it succeeds, fails for another reason, or
// waitTransient gives up.
func (e *Engine) retryTransient(ctx context.Context, op func() error) error {
	var since time.Time
	for {
		err := op()
		if err == nil || !isTransient(err) || !e.waitTransient(ctx, &since) {
			return err
		}
	}
}
