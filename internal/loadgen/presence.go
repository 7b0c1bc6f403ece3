package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// PresenceConfig: Conns watcher connections stay subscribed to Channels
// presence channels; joiner connections join those channels at Rate joins
// per second, each as a fresh user, and leave after Hold. Watchers measure
// how long member_added and member_removed take to reach them.
type PresenceConfig struct {
	Common
	Channels int
	Rate     float64
	Duration time.Duration
	Hold     time.Duration
	Limits   StepLimits
}

// presenceMaxMembers is the members-per-channel limit of Pusher, soketi and
// Sockudo; going over it measures rejections, not presence.
const presenceMaxMembers = 100

func presenceChannel(k int) string { return "presence-sb-" + strconv.Itoa(k) }

// Joined users are "sbu-<step>-<seq>": member_removed carries only the
// user id, so the id must lead back to the leave time.
var joinerIDPrefix = []byte("sbu-")

func parseJoinerID(msg []byte) (seq int64, ok bool) {
	i := bytes.Index(msg, joinerIDPrefix)
	if i < 0 {
		return 0, false
	}
	j := i + len(joinerIDPrefix)
	_, j, ok = parseInt(msg, j)
	if !ok || j >= len(msg) || msg[j] != '-' {
		return 0, false
	}
	seq, _, ok = parseInt(msg, j+1)
	return seq, ok
}

// RunPresence runs the presence scenario.
func RunPresence(ctx context.Context, cfg PresenceConfig, env Env) (*Report, error) {
	if cfg.Channels <= 0 || cfg.Conns < cfg.Channels || cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Hold <= 0 {
		return nil, errors.New("presence: need conns >= channels > 0, and rate, duration, hold > 0")
	}
	// Joiners needed so one is free whenever a join is due: each is busy
	// for Hold (+ subscribe time), and joins rotate over them.
	joiners := int(cfg.Rate*(cfg.Hold.Seconds()+1)*1.5) + 1
	watchersPer := (cfg.Conns + cfg.Channels - 1) / cfg.Channels
	concurrentPer := int(cfg.Rate*cfg.Hold.Seconds())/cfg.Channels + 1
	if watchersPer+concurrentPer > presenceMaxMembers {
		return nil, fmt.Errorf("presence: %d watchers + ~%d joined members per channel exceeds the %d-member limit; use more channels",
			watchersPer, concurrentPer, presenceMaxMembers)
	}
	params := map[string]any{"watchers": cfg.Conns, "channels": cfg.Channels, "joiners": joiners, "rate": cfg.Rate,
		"duration_s": cfg.Duration.Seconds(), "hold_s": cfg.Hold.Seconds(), "max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6}
	r, err := newRunner("presence", cfg.Common, cfg.Conns+joiners, env, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()

	sched := NewSchedule(0, cfg.Rate, cfg.Duration)
	st := newStepStats()
	st.rem = NewRecorder()
	st.leaveAt = make([]atomic.Int64, sched.Count)
	steps := newStepTable(1)
	watchers := NewPool(cfg.Common, r.clock, r.log, func(c *Conn, ev, msg []byte) {
		now := r.clock.Now()
		switch string(ev) {
		case evMemberAdded:
			steps.recordStamped(c, msg, now)
		case evMemberRemoved:
			seq, ok := parseJoinerID(msg)
			s := steps.get(0)
			if !ok || s == nil || seq < 0 || seq >= int64(len(s.leaveAt)) {
				return
			}
			if at := s.leaveAt[seq].Load(); at > 0 {
				s.rem.Record(c.ID, time.Duration(now-at), now)
			}
		}
	})
	defer watchers.CloseAll(10 * time.Second)
	joinPool := NewPool(cfg.Common, r.clock, r.log, nil)
	defer joinPool.CloseAll(10 * time.Second)

	stop := r.startProgress(ctx, func() string {
		if steps.get(0) == nil {
			return fmt.Sprintf("connecting watchers %d/%d, joiners %d/%d", watchers.Held(), cfg.Conns, joinPool.Held(), joiners)
		}
		// member_added is the step's delivery; member_removed is counted apart.
		return r.stepStatus(func() string { return "" }) +
			fmt.Sprintf(", member_removed %d/%d", st.rem.Count(), st.expectRem.Load())
	})
	defer stop()

	key, secret := cfg.Target.Key, cfg.Target.Secret
	n := r.capConns(cfg.Conns + joiners)
	nWatch := max(0, n-joiners)
	held := watchers.ConnectN(ctx, nWatch, func(ctx context.Context, c *Conn) error {
		ch := presenceChannel(c.ID % cfg.Channels)
		data := `{"user_id":"w-` + strconv.Itoa(c.ID) + `","user_info":{}}`
		return c.Subscribe(ctx, ch, pushersign.ChannelAuth(key, secret, c.SocketID, ch, data), data)
	})
	heldJ := joinPool.ConnectN(ctx, joiners, nil)
	r.rep.Conns.Held = held + heldJ
	if held == 0 || heldJ == 0 {
		stop()
		return r.finish(cfg.Conns+joiners, watchers, joinPool), errors.New("presence: no watchers or no joiners connected")
	}
	go watchers.KeepAlive(ctx)
	go joinPool.KeepAlive(ctx)
	sleepCtx(ctx, cfg.Settle)

	subs := make([]int64, cfg.Channels)
	for _, c := range watchers.Conns() {
		subs[c.ID%cfg.Channels]++
	}
	jconns := joinPool.Conns()
	steps.set(0, st)
	w := r.beginStep(fmt.Sprintf("%.0f joins/s", cfg.Rate), cfg.Rate, st)
	sched.Start = r.clock.Now() + int64(10*time.Millisecond)
	var leaves sync.WaitGroup
	runSends(ctx, r.clock, sched, 16, st, func(ctx context.Context, seq, due int64) (int64, error) {
		c := jconns[seq%int64(len(jconns))]
		k := int(seq % int64(cfg.Channels))
		ch := presenceChannel(k)
		info := appendStamp(nil, 0, seq, due, 0)
		data := `{"user_id":"sbu-0-` + strconv.FormatInt(seq, 10) + `","user_info":` + string(info) + `}`
		sctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
		err := c.Subscribe(sctx, ch, pushersign.ChannelAuth(key, secret, c.SocketID, ch, data), data)
		cancel()
		if err != nil {
			return 0, err
		}
		// Leave at due+Hold on its own timer so the sender is free for the
		// next join; the leave time is taken just before the unsubscribe.
		leaves.Add(1)
		time.AfterFunc(time.Duration(due+int64(cfg.Hold)-r.clock.Now()), func() {
			defer leaves.Done()
			st.leaveAt[seq].Store(r.clock.Now())
			if c.Unsubscribe(ch) == nil {
				st.expectRem.Add(subs[k])
			}
		})
		return subs[k], nil
	})
	leaves.Wait()
	drain(ctx, st, cfg.Drain)
	s := w.end(sched.End()+int64(cfg.Hold), cfg.Limits)
	r.rep.Steps = append(r.rep.Steps, s)
	r.rep.Conns.Lost = held + heldJ - watchers.Held() - joinPool.Held()
	stop()
	return r.finish(cfg.Conns+joiners, watchers, joinPool), nil
}
