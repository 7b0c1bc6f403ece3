package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// DamonStoreConfig: Conns Damon clients connect to the nodes' /damon WebSocket
// (round-robin), IDENTIFY into Groups groups, stay for Hold, then close.
// The cluster store counters are diffed around both phases: a Damon
// connection should cost the store nothing.
type DamonStoreConfig struct {
	Common
	Nodes    []Target
	Path     string // WebSocket path, default /damon
	Token    string
	Groups   int
	Hold     time.Duration
	Baseline time.Duration
}

// damonIdentified reports whether doc is the server's IDENTIFY answer
// ({"op":1,"data":{"id":...}}), or the failure it sent instead.
func damonIdentified(doc []byte) (ok bool, err error) {
	var m struct {
		Op   int             `json:"op"`
		Data json.RawMessage `json:"data"`
	}
	if e := json.Unmarshal(doc, &m); e != nil {
		return false, fmt.Errorf("damon: bad document %q: %w", doc, e)
	}
	switch m.Op {
	case 1:
		var d struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &d) != nil || d.ID == "" {
			return false, fmt.Errorf("damon: IDENTIFY answer without an id: %s", doc)
		}
		return true, nil
	case 2:
		return false, fmt.Errorf("damon: server disconnected us: %s", m.Data)
	}
	return false, nil // a ping or an event: keep reading
}

// dialClusterDamon connects to url, identifies and returns the connection.
func dialClusterDamon(ctx context.Context, d *sourceDialer, url, group, token string) (net.Conn, error) {
	wd := ws.Dialer{NetDial: d.DialContext}
	nc, br, _, err := wd.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("damon dial: %w", err)
	}
	if br != nil {
		ws.PutReader(br) // the server says nothing before IDENTIFY
	}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	if err := wsutil.WriteClientText(nc, damonIdentify(group, token)); err != nil {
		_ = nc.Close() // the write error is the one to report
		return nil, err
	}
	for {
		doc, err := wsutil.ReadServerText(nc)
		if err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("damon: waiting for IDENTIFY answer: %w", err)
		}
		ok, err := damonIdentified(doc)
		if err != nil {
			_ = nc.Close()
			return nil, err
		}
		if ok {
			_ = nc.SetDeadline(time.Time{})
			return nc, nil
		}
	}
}

// RunDamonStore measures store operations per Damon connect and disconnect.
func RunDamonStore(ctx context.Context, cfg DamonStoreConfig, env Env) (*ClusterReport, error) {
	if len(cfg.Nodes) == 0 || cfg.Conns <= 0 || cfg.Groups <= 0 {
		return nil, errors.New("cluster-damon: need nodes, conns > 0 and groups > 0")
	}
	if cfg.Path == "" {
		cfg.Path = "/damon"
	}
	cfg.Target = cfg.Nodes[0]
	r, err := newRunner("cluster-damon", cfg.Common, cfg.Conns, env, map[string]any{
		"conns": cfg.Conns, "groups": cfg.Groups, "nodes": len(cfg.Nodes), "hold_s": cfg.Hold.Seconds()})
	if err != nil {
		return nil, err
	}
	r.rep.Target = strings.Join(nodeAddrs(cfg.Nodes), ",")
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	res := &ClusterResult{Nodes: nodeAddrs(cfg.Nodes)}
	rep := &ClusterReport{Report: r.rep, Cluster: res}
	scr := NewScraper(cfg.Nodes, ClusterMetricPrefix)
	idle, err := idleCounters(ctx, scr, cfg.Baseline)
	if err != nil {
		return rep, err
	}
	dialer := newSourceDialer(cfg.SourceAddrs, cfg.ConnectTimeout)
	conns := make([]net.Conn, cfg.Conns)
	perNode := make([]int, len(cfg.Nodes))
	var errs errTally
	c0, err := scr.Scrape(ctx)
	if err != nil {
		return rep, err
	}
	t0 := time.Now()
	sem := make(chan struct{}, cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range cfg.Conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			node := i % len(cfg.Nodes)
			url := "ws://" + cfg.Nodes[node].Addr() + cfg.Path
			dctx, dcancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
			nc, err := dialClusterDamon(dctx, dialer, url, "sb-group-"+strconv.Itoa(i%cfg.Groups), cfg.Token)
			dcancel()
			if err != nil {
				errs.add(err)
				return
			}
			mu.Lock()
			conns[i] = nc
			perNode[node]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	connectDur := time.Since(t0)
	c1, err := scr.Scrape(ctx)
	if err != nil {
		return rep, err
	}
	held := 0
	for _, n := range perNode {
		held += n
	}
	res.SubscribersPerNode = perNode
	oc := storeOpCost(c0, c1, idle, cfg.Baseline, connectDur, int64(held))
	res.DamonStorePerConnect = &oc
	r.rep.Conns = ConnStats{Requested: cfg.Conns, Attempted: int64(cfg.Conns), Held: held, ConnectErrors: errs.Total(), Errors: errs.Top(5)}
	sleepCtx(ctx, cfg.Hold)

	c2, err := scr.Scrape(ctx)
	if err != nil {
		return rep, err
	}
	t1 := time.Now()
	for _, nc := range conns {
		if nc != nil {
			_ = nc.Close() // a close error leaves nothing to do
		}
	}
	// The server notices the close asynchronously; give it a moment
	// (part of the measured window, so its background is subtracted too).
	sleepCtx(ctx, time.Second)
	c3, err := scr.Scrape(ctx)
	if err != nil {
		return rep, err
	}
	od := storeOpCost(c2, c3, idle, cfg.Baseline, time.Since(t1), int64(held))
	res.DamonStorePerDisconnect = &od
	r.rep.DurationS = roundTo(time.Since(r.start).Seconds(), 2)
	if held == 0 {
		return rep, errors.New("cluster-damon: no Damon client identified")
	}
	return rep, nil
}

// KillConfig: a presence member joins on node Victim, one watcher per
// other node watches the channel; once every watcher has seen the member,
// the generator sends SIGKILL to VictimPID and times how long each
// watcher takes to receive pusher_internal:member_removed.
type KillConfig struct {
	Common
	Nodes     []Target
	Victim    int
	VictimPID int
	// Wait bounds the wait for member_removed after the kill.
	Wait time.Duration
}

// KillWatcher is one watcher's view of the kill.
type KillWatcher struct {
	Node    string  `json:"node"`
	Removed bool    `json:"member_removed"`
	DelayMs float64 `json:"delay_ms,omitempty"`
	// StillListed: after the wait, the member was still in the channel's
	// member list as seen by this watcher's node (HTTP users query).
	UsersQuery string `json:"users_query_after,omitempty"`
}

// KillResult is the kill-to-member_removed measurement.
type KillResult struct {
	Victim   string        `json:"victim_node"`
	WaitS    float64       `json:"wait_s"`
	Watchers []KillWatcher `json:"watchers"`
}

func writeKill(b *strings.Builder, k *KillResult) {
	fmt.Fprintf(b, "SIGKILL %s (waited up to %.0fs):\n", k.Victim, k.WaitS)
	for _, w := range k.Watchers {
		if w.Removed {
			fmt.Fprintf(b, "  watcher on %s: member_removed after %.0f ms\n", w.Node, w.DelayMs)
		} else {
			fmt.Fprintf(b, "  watcher on %s: no member_removed\n", w.Node)
		}
		if w.UsersQuery != "" {
			fmt.Fprintf(b, "    users query on its node afterwards: %s\n", w.UsersQuery)
		}
	}
}

const killMemberID = "sb-kill-victim"

// RunKill runs the kill-to-member_removed measurement. It kills only the
// process it is given, and only after checking that it exists.
func RunKill(ctx context.Context, cfg KillConfig, env Env) (*ClusterReport, error) {
	if len(cfg.Nodes) < 2 || cfg.Victim < 0 || cfg.Victim >= len(cfg.Nodes) || cfg.VictimPID <= 1 || cfg.Wait <= 0 {
		return nil, errors.New("cluster-kill: need 2+ nodes, a victim node index, its pid and a wait")
	}
	if err := syscall.Kill(cfg.VictimPID, 0); err != nil {
		return nil, fmt.Errorf("cluster-kill: pid %d: %w", cfg.VictimPID, err)
	}
	cfg.Target = cfg.Nodes[0]
	r, err := newRunner("cluster-kill", cfg.Common, len(cfg.Nodes), env, map[string]any{
		"nodes": len(cfg.Nodes), "victim": cfg.Victim, "wait_s": cfg.Wait.Seconds()})
	if err != nil {
		return nil, err
	}
	r.rep.Target = strings.Join(nodeAddrs(cfg.Nodes), ",")
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	kr := &KillResult{Victim: cfg.Nodes[cfg.Victim].Addr(), WaitS: cfg.Wait.Seconds()}
	rep := &ClusterReport{Report: r.rep, Cluster: &ClusterResult{Nodes: nodeAddrs(cfg.Nodes), Kill: kr}}

	const ch = "presence-sb-kill"
	key, secret := cfg.Target.Key, cfg.Target.Secret
	var killedAt int64
	var mu sync.Mutex
	added := map[int]bool{}
	removedAt := map[int]int64{}
	changed := make(chan struct{}, 16)
	note := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	pools := nodePools(r, cfg.Nodes, func(node int) MessageFunc {
		return func(_ *Conn, ev, msg []byte) {
			if !bytes.Contains(msg, []byte(killMemberID)) {
				return
			}
			now := r.clock.Now()
			mu.Lock()
			switch string(ev) {
			case evMemberAdded:
				added[node] = true
			case evMemberRemoved:
				if _, ok := removedAt[node]; !ok && killedAt > 0 {
					removedAt[node] = now
				}
			}
			mu.Unlock()
			note()
		}
	})
	defer closePools(pools)
	join := func(node int, user string) error {
		if pools[node].ConnectN(ctx, 1, func(ctx context.Context, c *Conn) error {
			data := `{"user_id":"` + user + `","user_info":{}}`
			return c.Subscribe(ctx, ch, pushersign.ChannelAuth(key, secret, c.SocketID, ch, data), data)
		}) != 1 {
			return fmt.Errorf("cluster-kill: %s could not join %s on %s", user, ch, cfg.Nodes[node].Addr())
		}
		return nil
	}
	var watchers []int
	for j := range cfg.Nodes {
		if j == cfg.Victim {
			continue
		}
		if err := join(j, "sb-kill-watcher-"+strconv.Itoa(j)); err != nil {
			return rep, err
		}
		watchers = append(watchers, j)
	}
	if err := join(cfg.Victim, killMemberID); err != nil {
		return rep, err
	}
	// Every watcher must have seen the member before the kill, or a late
	// member_added could race the removal.
	seen := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, j := range watchers {
			if !added[j] {
				return false
			}
		}
		return true
	}
	if !waitFor(ctx, changed, 10*time.Second, seen) {
		return rep, errors.New("cluster-kill: not every watcher saw the member join")
	}
	sleepCtx(ctx, cfg.Settle)
	p, err := os.FindProcess(cfg.VictimPID)
	if err != nil {
		return rep, err
	}
	mu.Lock()
	killedAt = r.clock.Now()
	mu.Unlock()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return rep, fmt.Errorf("cluster-kill: SIGKILL %d: %w", cfg.VictimPID, err)
	}
	r.log.Info("killed", "pid", cfg.VictimPID, "node", kr.Victim)
	allRemoved := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(removedAt) == len(watchers)
	}
	waitFor(ctx, changed, cfg.Wait, allRemoved)
	mu.Lock()
	for _, j := range watchers {
		w := KillWatcher{Node: cfg.Nodes[j].Addr()}
		if at, ok := removedAt[j]; ok {
			w.Removed = true
			w.DelayMs = roundTo(float64(at-killedAt)/1e6, 1)
		}
		kr.Watchers = append(kr.Watchers, w)
	}
	mu.Unlock()
	for i, j := range watchers {
		kr.Watchers[i].UsersQuery = usersQuery(ctx, cfg.Nodes[j], ch)
	}
	r.finish(len(cfg.Nodes), pools...)
	return rep, nil
}

// waitFor waits until cond holds (re-checked on every signal on changed and
// every 100 ms), or d passes; it reports cond's last value.
func waitFor(ctx context.Context, changed <-chan struct{}, d time.Duration, cond func() bool) bool {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-changed:
		case <-tick.C:
		case <-end.C:
			return cond()
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}

// usersQuery asks node for the presence channel's users (signed GET
// /apps/{id}/channels/{ch}/users) and returns the answer, shortened.
func usersQuery(ctx context.Context, node Target, ch string) string {
	path := "/apps/" + node.AppID + "/channels/" + ch + "/users"
	q := url.Values{}
	pushersign.SignRESTQuery(node.Key, node.Secret, http.MethodGet, path, q, nil, time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node.HTTPBase()+path+"?"+q.Encode(), nil)
	if err != nil {
		return "error: " + err.Error()
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer func() { _ = resp.Body.Close() }() // read below; nothing to do on a close error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	status := resp.StatusCode
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return fmt.Sprintf("HTTP %d %s", status, s)
}
