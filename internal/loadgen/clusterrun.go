package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// nodePools opens one pool per node: each pool's connections dial that
// node's WebSocket URL.
func nodePools(r *runner, nodes []Target, onMsg func(node int) MessageFunc) []*Pool {
	pools := make([]*Pool, len(nodes))
	for j, n := range nodes {
		c := r.cfg
		c.Target = n
		var f MessageFunc
		if onMsg != nil {
			f = onMsg(j)
		}
		pools[j] = NewPool(c, r.clock, r.log, f)
	}
	return pools
}

func closePools(pools []*Pool) {
	for _, p := range pools {
		p.CloseAll(10 * time.Second)
	}
}

func heldAll(pools []*Pool) int {
	n := 0
	for _, p := range pools {
		n += p.Held()
	}
	return n
}

func nodeAddrs(nodes []Target) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Addr()
	}
	return out
}

// RunCluster runs the cluster fan-out scenario (see ClusterConfig).
func RunCluster(ctx context.Context, cfg ClusterConfig, env Env) (*ClusterReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Target = cfg.Nodes[0]
	params := map[string]any{
		"conns": cfg.Conns, "channels": cfg.Channels, "rates": cfg.Rates, "nodes": len(cfg.Nodes),
		"publish_mode": string(cfg.PublishMode), "step_s": cfg.StepDuration.Seconds(),
		"max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6, "payload_bytes": cfg.PayloadBytes,
		"publish_workers": cfg.PublishWorkers,
	}
	r, err := newRunner("cluster", cfg.Common, cfg.Conns, env, params)
	if err != nil {
		return nil, err
	}
	r.rep.Target = strings.Join(nodeAddrs(cfg.Nodes), ",")
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	lay := clusterLayout{nodes: len(cfg.Nodes), channels: cfg.Channels, mode: cfg.PublishMode, pubNode: cfg.PublishNode}
	res := &ClusterResult{Nodes: nodeAddrs(cfg.Nodes), PublishMode: cfg.PublishMode, PublishNode: cfg.PublishNode}
	rep := &ClusterReport{Report: r.rep, Cluster: res}

	steps := newStepTable(len(cfg.Rates))
	cr := newClusterRecorders(len(cfg.Rates))
	var unstamped atomic.Int64
	pools := nodePools(r, cfg.Nodes, func(node int) MessageFunc {
		return func(c *Conn, ev, msg []byte) {
			if string(ev) != benchEvent {
				return
			}
			now := r.clock.Now()
			step, seq, ns, ok := parseStamp(msg)
			st := steps.get(step)
			if !ok || st == nil {
				unstamped.Add(1)
				return
			}
			d := time.Duration(now - ns)
			st.rec.Record(c.ID, d, now)
			if lay.publishNode(seq) == node {
				cr.local[step].Record(c.ID, d, now)
			} else {
				cr.cross[step].Record(c.ID, d, now)
			}
		}
	})
	defer closePools(pools)

	var scr *Scraper
	var idle Counters
	if cfg.Metrics {
		scr = NewScraper(cfg.Nodes, ClusterMetricPrefix)
		if idle, err = idleCounters(ctx, scr, cfg.Baseline); err != nil {
			return rep, err
		}
	}

	n := r.capConns(cfg.Conns)
	var curStep atomic.Int64
	curStep.Store(-1)
	stop := r.startProgress(ctx, func() string {
		i := int(curStep.Load())
		st := steps.get(i)
		if st == nil {
			return fmt.Sprintf("connecting %d/%d over %d nodes", heldAll(pools), n, len(pools))
		}
		return fmt.Sprintf("step %d/%d rate %.0f/s: sent %d, received %d/%d, cross p99 %.2fms, send errors %d",
			i+1, len(cfg.Rates), cfg.Rates[i], st.sent.Load(), st.rec.Count(), st.expected.Load(),
			cr.cross[i].Summary().P99Ms, st.sendErrors.Load())
	})
	defer stop()

	var before Counters
	if scr != nil {
		if before, err = scr.Scrape(ctx); err != nil {
			return rep, err
		}
	}
	t0 := time.Now()
	r.log.Info("connecting", "conns", n, "nodes", len(pools), "channels", cfg.Channels)
	held := connectSpread(ctx, pools, lay, n, func(ctx context.Context, c *Conn, g int) error {
		return c.Subscribe(ctx, fanoutChannel(lay.channelOf(g)), "", "")
	})
	connectDur := time.Since(t0)
	for _, p := range pools {
		res.SubscribersPerNode = append(res.SubscribersPerNode, p.Held())
	}
	r.log.Info("connected", "held", held, "per_node", res.SubscribersPerNode)
	if scr != nil {
		after, err := scr.Scrape(ctx)
		if err != nil {
			return rep, err
		}
		oc := storeOpCost(before, after, idle, cfg.Baseline, connectDur, int64(held))
		res.StorePerSubscribe = &oc
	}
	if held == 0 {
		stop()
		r.finish(cfg.Conns, pools...)
		return rep, errors.New("cluster: no subscriber connected")
	}
	for _, p := range pools {
		go p.KeepAlive(ctx)
	}
	sleepCtx(ctx, cfg.Settle)

	in := newInterest(cfg.Channels, len(pools))
	for j, p := range pools {
		for _, c := range p.Conns() {
			in[lay.channelOf(lay.subscriber(j, c.ID))][j]++
		}
	}
	pubs := make([]*Publisher, len(cfg.Nodes))
	for j, t := range cfg.Nodes {
		pubs[j] = NewPublisher(t, cfg.PublishWorkers, 10*time.Second)
		defer pubs[j].Close()
	}

	best := -1
	for i, rate := range cfg.Rates {
		if ctx.Err() != nil {
			break
		}
		st := newStepStats()
		steps.set(i, st)
		curStep.Store(int64(i))
		name := fmt.Sprintf("%.0f/s", rate)
		var c0 Counters
		if scr != nil {
			if c0, err = scr.Scrape(ctx); err != nil {
				return rep, err
			}
		}
		w := r.beginStep(name, rate, st)
		sched := NewSchedule(r.clock.Now()+int64(10*time.Millisecond), rate, cfg.StepDuration)
		runSends(ctx, r.clock, sched, cfg.PublishWorkers, st, func(ctx context.Context, seq, due int64) (int64, error) {
			k := int(seq % int64(cfg.Channels))
			node := lay.publishNode(seq)
			data := appendStamp(make([]byte, 0, 64+cfg.PayloadBytes), i, seq, due, cfg.PayloadBytes)
			if err := pubs[node].Trigger(ctx, benchEvent, []string{fanoutChannel(k)}, data); err != nil {
				return 0, err
			}
			cr.otherSum[i].Add(int64(in.otherNodes(k, node)))
			return in.subscribers(k), nil
		})
		drain(ctx, st, cfg.Drain)
		s := w.end(sched.End(), cfg.Limits)
		r.rep.Steps = append(r.rep.Steps, s)
		cs := ClusterStep{Name: name, Rate: rate, Cross: cr.cross[i].Summary(), Local: cr.local[i].Summary()}
		if ok := s.Sent - s.SendErrors; ok > 0 {
			cs.OtherNodesPerPublish = roundTo(float64(cr.otherSum[i].Load())/float64(ok), 3)
		}
		if scr != nil {
			c1, err := scr.Scrape(ctx)
			if err != nil {
				return rep, err
			}
			if s.Sent > 0 {
				v := roundTo(c1.Sub(c0).Sum(metricBrokerMessages)/float64(s.Sent), 3)
				cs.BrokerMessagesPerPublish = &v
			}
		}
		res.Steps = append(res.Steps, cs)
		r.log.Info("step done", "rate", rate, "deliveries_per_s", s.DeliveriesPerSec, "cross_p99_ms", cs.Cross.P99Ms,
			"missing", s.Missing, "pass", s.Pass, "reason", s.FailReason)
		if s.Pass {
			best = len(r.rep.Steps) - 1
		} else if !cfg.KeepGoing {
			break
		}
		if i < len(cfg.Rates)-1 {
			sleepCtx(ctx, cfg.Pause)
		}
	}
	if best >= 0 {
		b := r.rep.Steps[best]
		r.rep.Best = &b
	}
	r.rep.Conns.Held = held
	r.rep.Conns.Lost = held - heldAll(pools)
	if u := unstamped.Load(); u > 0 {
		r.note(fmt.Sprintf("%d bench events arrived without a readable stamp", u))
	}
	if cfg.Metrics {
		r.note("broker messages are what switchboard_cluster_broker_messages_total counts: messages each node sent to the broker (one per publication), not the broker's deliveries to other nodes")
	}
	stop()
	r.finish(cfg.Conns, pools...)
	return rep, nil
}

// idleCounters measures the counters' growth over an idle window d (zero:
// no background correction).
func idleCounters(ctx context.Context, scr *Scraper, d time.Duration) (Counters, error) {
	if d <= 0 {
		return Counters{}, nil
	}
	a, err := scr.Scrape(ctx)
	if err != nil {
		return nil, err
	}
	sleepCtx(ctx, d)
	b, err := scr.Scrape(ctx)
	if err != nil {
		return nil, err
	}
	return b.Sub(a), nil
}

// connectSpread connects n subscribers spread over the node pools (the
// layout's round-robin), all nodes at once, and returns how many are held.
// setup gets the subscriber's global index.
func connectSpread(ctx context.Context, pools []*Pool, lay clusterLayout, n int, setup func(ctx context.Context, c *Conn, g int) error) int {
	done := make(chan struct{}, len(pools))
	for j, p := range pools {
		go func() {
			defer func() { done <- struct{}{} }()
			p.ConnectN(ctx, lay.perNode(n, j), func(ctx context.Context, c *Conn) error {
				return setup(ctx, c, lay.subscriber(j, c.ID))
			})
		}()
	}
	for range pools {
		<-done
	}
	return heldAll(pools)
}
