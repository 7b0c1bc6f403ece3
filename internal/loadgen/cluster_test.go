package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func TestParseNodes(t *testing.T) {
	base := DefaultTarget()
	got, err := ParseNodes(" 127.0.0.1:6001, ws://127.0.0.1:6002/app/x ,http://localhost:6003,, [::1]:6004", base)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:6001", "127.0.0.1:6002", "localhost:6003", "[::1]:6004"}
	if len(got) != len(want) {
		t.Fatalf("nodes = %v", got)
	}
	for i, n := range got {
		if n.Addr() != want[i] || n.Key != base.Key || n.Secret != base.Secret || n.AppID != base.AppID {
			t.Errorf("node %d = %+v, want %s with the base credentials", i, n, want[i])
		}
	}
	if got[1].WSURL() != "ws://127.0.0.1:6002/app/app-key?protocol=7&client=switchboard-bench&version=1.0" {
		t.Errorf("a ws:// node keeps only host:port, got %s", got[1].WSURL())
	}
	for _, bad := range []string{"", " , ", "127.0.0.1", "127.0.0.1:x", "wss://127.0.0.1:1", "10.0.0.1:6001", "ws://[::1"} {
		if _, err := ParseNodes(bad, base); err == nil {
			t.Errorf("ParseNodes(%q) accepted", bad)
		}
	}
	remote := base
	remote.AllowRemote = true
	if _, err := ParseNodes("10.0.0.1:6001", remote); err != nil {
		t.Errorf("a remote node with AllowRemote: %v", err)
	}
}

func TestParsePublishMode(t *testing.T) {
	for in, want := range map[string]PublishMode{"round-robin": PublishRoundRobin, "RR": PublishRoundRobin, "one": PublishOne} {
		if got, err := ParsePublishMode(in); err != nil || got != want {
			t.Errorf("%q = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePublishMode("all"); err == nil {
		t.Error("unknown mode accepted")
	}
}

// The sockudo workload: 900 subscribers, 100 channels, 3 nodes. Each
// channel gets 9 subscribers, 3 on every node, so a publication on any node
// must reach both other nodes.
func TestClusterLayoutSpreadsEvenly(t *testing.T) {
	lay := clusterLayout{nodes: 3, channels: 100, mode: PublishRoundRobin}
	in := newInterest(100, 3)
	seen := map[int]bool{}
	for j := range 3 {
		if n := lay.perNode(900, j); n != 300 {
			t.Fatalf("node %d holds %d", j, n)
		}
		for i := range 300 {
			g := lay.subscriber(j, i)
			if g%3 != j || seen[g] {
				t.Fatalf("node %d local %d -> subscriber %d", j, i, g)
			}
			seen[g] = true
			in[lay.channelOf(g)][j]++
		}
	}
	if len(seen) != 900 {
		t.Fatalf("%d distinct subscribers", len(seen))
	}
	for k := range 100 {
		if in.subscribers(k) != 9 || in[k][0] != 3 || in[k][1] != 3 || in[k][2] != 3 {
			t.Fatalf("channel %d interest %v", k, in[k])
		}
		for from := range 3 {
			if in.otherNodes(k, from) != 2 {
				t.Fatalf("channel %d from %d: %d other nodes", k, from, in.otherNodes(k, from))
			}
		}
	}
	for seq, want := range []int{0, 1, 2, 0, 1} {
		if got := lay.publishNode(int64(seq)); got != want {
			t.Errorf("round-robin publish %d -> node %d, want %d", seq, got, want)
		}
	}
	one := clusterLayout{nodes: 3, channels: 100, mode: PublishOne, pubNode: 2}
	for seq := range int64(5) {
		if one.publishNode(seq) != 2 {
			t.Fatalf("publish mode one sent %d elsewhere", seq)
		}
	}
}

func TestClusterLayoutUneven(t *testing.T) {
	lay := clusterLayout{nodes: 3, channels: 3}
	if got := []int{lay.perNode(10, 0), lay.perNode(10, 1), lay.perNode(10, 2)}; got[0] != 4 || got[1] != 3 || got[2] != 3 {
		t.Fatalf("10 over 3 nodes: %v", got)
	}
	if lay.perNode(2, 2) != 0 || lay.perNode(2, 1) != 1 {
		t.Fatal("fewer subscribers than nodes")
	}
	// Channel k here lives on node k only: no other node has interest.
	in := newInterest(3, 3)
	for j := range 3 {
		for i := range lay.perNode(9, j) {
			in[lay.channelOf(lay.subscriber(j, i))][j]++
		}
	}
	if in.otherNodes(1, 1) != 0 || in.otherNodes(1, 0) != 1 {
		t.Fatalf("interest %v", in)
	}
}

const sampleMetrics = `# HELP switchboard_cluster_broker_messages_total Messages this node sent.
# TYPE switchboard_cluster_broker_messages_total counter
switchboard_cluster_broker_messages_total{engine="redis"} 12
switchboard_cluster_store_operations_total{engine="redis",op="heartbeat",result="ok"} 40
switchboard_cluster_store_operations_total{engine="redis",op="occupancy",result="ok"} 7
switchboard_cluster_store_operations_total{engine="redis",op="odd \"op\", {x}",result="error"} 1 1700000000000
switchboard_cluster_nodes{engine="redis"} 3
switchboard_connections 5
go_goroutines 10
`

func TestParseCounters(t *testing.T) {
	c, err := ParseCounters(strings.NewReader(sampleMetrics), ClusterMetricPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 5 {
		t.Fatalf("kept %d series: %v", len(c), c)
	}
	if c.Sum(metricBrokerMessages) != 12 || c.Sum(metricStoreOps) != 48 {
		t.Fatalf("sums: broker %v store %v", c.Sum(metricBrokerMessages), c.Sum(metricStoreOps))
	}
	by := c.By(metricStoreOps, "op", "result")
	if by["heartbeat/ok"] != 40 || by["occupancy/ok"] != 7 || by[`odd "op", {x}/error`] != 1 || len(by) != 3 {
		t.Fatalf("by op: %v", by)
	}
	for _, bad := range []string{
		"switchboard_cluster_x{a=\"1\" 3\n",
		"switchboard_cluster_x 1 2 3\n",
		"switchboard_cluster_x{a=\"1\"} abc\n",
		"switchboard_cluster_x\n",
	} {
		if _, err := ParseCounters(strings.NewReader(bad), ClusterMetricPrefix); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestStoreOpCostSubtractsBackground(t *testing.T) {
	s := func(op string, v float64) Counters {
		return Counters{`switchboard_cluster_store_operations_total{engine="nats",op="` + op + `",result="ok"}`: v}
	}
	before := s("update", 100).Add(s("get", 50))
	// 2 s phase: 3 heartbeat updates/s in the background (idle: 6 over 2 s)
	// plus 300 subscribes costing one get and one update each.
	after := s("update", 100+6+300).Add(s("get", 50+300)).Add(s("create", 3))
	idle := s("update", 3) // 3 over a 1 s idle window
	oc := storeOpCost(before, after, idle, time.Second, 2*time.Second, 300)
	if oc.Raw != 609 || oc.Background != 6 || oc.PerUnit != 2.01 {
		t.Fatalf("cost %+v", oc)
	}
	if oc.ByOp["update/ok"] != 1 || oc.ByOp["get/ok"] != 1 || oc.ByOp["create/ok"] != 0.01 || len(oc.ByOp) != 3 {
		t.Fatalf("by op %v", oc.ByOp)
	}
	zero := storeOpCost(before, before.Add(idle.Scale(2)), idle, time.Second, 2*time.Second, 10)
	if zero.PerUnit != 0 || len(zero.ByOp) != 0 {
		t.Fatalf("background only: %+v", zero)
	}
}

// fakeCluster serves one fakePusher (shared state, as a cluster would
// share it) on several listeners, with /metrics counting one broker
// message per HTTP publish it took and (on the first node) one store
// operation per subscription, and a /damon endpoint that answers IDENTIFY.
type fakeCluster struct {
	fp    *fakePusher
	nodes []Target
}

func startFakeCluster(t *testing.T, n int) (*fakeCluster, Common) {
	t.Helper()
	fp, c := startFake(t)
	fc := &fakeCluster{fp: fp}
	node := func(first bool) http.Handler {
		var publishes atomic.Int64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/metrics":
				fp.mu.Lock()
				subs := 0
				for _, m := range fp.channels {
					subs += len(m)
				}
				fp.mu.Unlock()
				if !first {
					subs = 0
				}
				_, _ = fmt.Fprintf(w, "switchboard_cluster_broker_messages_total{engine=\"fake\"} %d\n", publishes.Load())
				_, _ = fmt.Fprintf(w, "switchboard_cluster_store_operations_total{engine=\"fake\",op=\"occupancy\",result=\"ok\"} %d\n", subs)
			case "/damon":
				serveFakeDamon(w, r)
			default:
				if r.Method == http.MethodPost {
					publishes.Add(1)
				}
				fp.ServeHTTP(w, r)
			}
		})
	}
	for i := range n {
		srv := httptest.NewServer(node(i == 0))
		t.Cleanup(srv.Close)
		fc.nodes = append(fc.nodes, testTarget(t, srv))
	}
	return fc, c
}

func serveFakeDamon(w http.ResponseWriter, r *http.Request) {
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	defer func() { _ = nc.Close() }() // the client closes first; nothing to report
	doc, err := wsutil.ReadClientText(nc)
	if err != nil {
		return
	}
	if !strings.Contains(string(doc), `"token":"tok"`) {
		_ = wsutil.WriteServerText(nc, []byte(`{"op":2,"data":"IDENTIFY_FAILED"}`))
		return
	}
	_ = wsutil.WriteServerText(nc, []byte(`{"op":3}`))
	_ = wsutil.WriteServerText(nc, []byte(`{"op":1,"data":{"id":"0b7f","ping":30000}}`))
	for {
		if _, err := wsutil.ReadClientText(nc); err != nil {
			return
		}
	}
}

func TestRunClusterRoundRobin(t *testing.T) {
	fc, c := startFakeCluster(t, 3)
	c.Conns = 30
	rep, err := RunCluster(context.Background(), ClusterConfig{Common: c, Nodes: fc.nodes, Channels: 5,
		Rates: []float64{40}, StepDuration: 500 * time.Millisecond, PublishWorkers: 4, PublishMode: PublishRoundRobin,
		Metrics: true, Baseline: 100 * time.Millisecond, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	cl := rep.Cluster
	if rep.Conns.Held != 30 || len(cl.SubscribersPerNode) != 3 || cl.SubscribersPerNode[0] != 10 || cl.SubscribersPerNode[2] != 10 {
		t.Fatalf("held %d, per node %v", rep.Conns.Held, cl.SubscribersPerNode)
	}
	s, cs := rep.Steps[0], cl.Steps[0]
	if s.Sent == 0 || s.SendErrors != 0 || s.Missing != 0 || s.Received != 6*s.Sent || !s.Pass {
		t.Fatalf("step %+v", s)
	}
	// 6 subscribers per channel, 2 on each node: every publish has 2 local
	// and 4 cross-node deliveries, whichever node it went to.
	if cs.Local.Count != 2*s.Sent || cs.Cross.Count != 4*s.Sent || cs.OtherNodesPerPublish != 2 {
		t.Fatalf("cluster step %+v (sent %d)", cs, s.Sent)
	}
	if cs.BrokerMessagesPerPublish == nil || *cs.BrokerMessagesPerPublish != 1 {
		t.Fatalf("broker messages per publish %v", cs.BrokerMessagesPerPublish)
	}
	if oc := cl.StorePerSubscribe; oc == nil || oc.PerUnit != 1 || oc.Units != 30 || oc.ByOp["occupancy/ok"] != 1 {
		t.Fatalf("store per subscribe %+v", cl.StorePerSubscribe)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "40/s cross-node: n=") {
		t.Fatalf("text report: %v\n%s", err, b.String())
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"cross_node_latency"`) || !strings.Contains(b.String(), `"scenario": "cluster"`) {
		t.Fatalf("json report: %v\n%s", err, b.String())
	}
}

func TestRunClusterPublishToOneNode(t *testing.T) {
	fc, c := startFakeCluster(t, 3)
	c.Conns = 30
	rep, err := RunCluster(context.Background(), ClusterConfig{Common: c, Nodes: fc.nodes, Channels: 5,
		Rates: []float64{40}, StepDuration: 300 * time.Millisecond, PublishWorkers: 2, PublishMode: PublishOne,
		PublishNode: 1, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	s, cs := rep.Steps[0], rep.Cluster.Steps[0]
	if s.Missing != 0 || cs.Local.Count != 2*s.Sent || cs.Cross.Count != 4*s.Sent || cs.BrokerMessagesPerPublish != nil {
		t.Fatalf("step %+v cluster %+v", s, cs)
	}
	if _, err := RunCluster(context.Background(), ClusterConfig{Common: c, Nodes: fc.nodes, Channels: 5,
		Rates: []float64{40}, StepDuration: time.Second, PublishWorkers: 2, PublishMode: PublishOne, PublishNode: 3}, Env{}); err == nil {
		t.Fatal("publish node outside the node list accepted")
	}
}

func TestRunDamonStoreCountsNothingForIdentifiedClients(t *testing.T) {
	fc, c := startFakeCluster(t, 2)
	c.Conns = 12
	rep, err := RunDamonStore(context.Background(), DamonStoreConfig{Common: c, Nodes: fc.nodes, Token: "tok", Groups: 3,
		Hold: 50 * time.Millisecond}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	cl := rep.Cluster
	if rep.Conns.Held != 12 || cl.SubscribersPerNode[0] != 6 || cl.SubscribersPerNode[1] != 6 {
		t.Fatalf("held %d per node %v errors %v", rep.Conns.Held, cl.SubscribersPerNode, rep.Conns.Errors)
	}
	if cl.DamonStorePerConnect == nil || cl.DamonStorePerConnect.PerUnit != 0 || cl.DamonStorePerConnect.Units != 12 ||
		cl.DamonStorePerDisconnect == nil || cl.DamonStorePerDisconnect.PerUnit != 0 {
		t.Fatalf("costs %+v %+v", cl.DamonStorePerConnect, cl.DamonStorePerDisconnect)
	}
	rep, err = RunDamonStore(context.Background(), DamonStoreConfig{Common: c, Nodes: fc.nodes, Token: "wrong", Groups: 1}, Env{})
	if err == nil || rep.Conns.ConnectErrors != 12 || !strings.Contains(rep.Conns.Errors[0].Message, "IDENTIFY_FAILED") {
		t.Fatalf("wrong token: %v, %+v", err, rep.Conns)
	}
}

func TestDamonIdentified(t *testing.T) {
	for doc, want := range map[string]bool{`{"op":1,"data":{"id":"a","ping":30000}}`: true, `{"op":3}`: false, `{"op":0,"data":{}}`: false} {
		if ok, err := damonIdentified([]byte(doc)); ok != want || err != nil {
			t.Errorf("%s: %v %v", doc, ok, err)
		}
	}
	for _, doc := range []string{`{"op":1,"data":{}}`, `{"op":2,"data":"IDENTIFY_FAILED"}`, `nope`} {
		if _, err := damonIdentified([]byte(doc)); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}

// The victim is a real child process; when it dies, the fake cluster drops
// the member that "lived" on it, as a surviving node reaping it would.
func TestRunKillTimesMemberRemoved(t *testing.T) {
	fc, c := startFakeCluster(t, 3)
	victim := exec.Command("sleep", "60")
	if err := victim.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		_ = victim.Wait() // killed by RunKill: the error is the signal
		fp := fc.fp
		fp.mu.Lock()
		var gone []*fakeConn
		for conn, user := range fp.channels["presence-sb-kill"] {
			if user == killMemberID {
				gone = append(gone, conn)
			}
		}
		fp.mu.Unlock()
		for _, conn := range gone {
			fp.unsubscribe(conn, "presence-sb-kill")
		}
	}()
	t.Cleanup(func() {
		_ = victim.Process.Kill() // already dead when the test passed
		<-reaped
	})
	rep, err := RunKill(context.Background(), KillConfig{Common: c, Nodes: fc.nodes, Victim: 2,
		VictimPID: victim.Process.Pid, Wait: 5 * time.Second}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	<-reaped
	if victim.ProcessState == nil || victim.ProcessState.Success() {
		t.Fatalf("victim not killed: %v", victim.ProcessState)
	}
	k := rep.Cluster.Kill
	if k.Victim != fc.nodes[2].Addr() || len(k.Watchers) != 2 {
		t.Fatalf("kill %+v", k)
	}
	for i, w := range k.Watchers {
		if w.Node != fc.nodes[i].Addr() || !w.Removed || w.DelayMs <= 0 || !strings.HasPrefix(w.UsersQuery, "HTTP 404") {
			t.Fatalf("watcher %d: %+v", i, w)
		}
	}
	if _, err := RunKill(context.Background(), KillConfig{Common: c, Nodes: fc.nodes, Victim: 0,
		VictimPID: victim.Process.Pid, Wait: time.Second}, Env{}); err == nil {
		t.Fatal("a pid that no longer exists was accepted")
	}
}
