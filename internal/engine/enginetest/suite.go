package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Cluster is the engines under test: node i is Engines[i], started with
// Locals[i] as its hub.
type Cluster struct {
	Engines []engine.Engine
	Locals  []*Recorder
	// Crash ends node i as kill -9 would: no cleanup, no goodbye. Nil
	// where a node cannot crash (the memory engine is one process).
	Crash func(i int)
	// Advance moves the clock that expires cached events, for engines
	// that keep their own; nil means real time passes.
	Advance func(d time.Duration)
}

// Factory builds a started cluster of n nodes (all Ready) on locals and
// registers its cleanup with t.
type Factory func(t *testing.T, locals []*Recorder) *Cluster

// Options shape the run.
type Options struct {
	// Nodes in the cluster: 1 for the memory engine, 3 for cluster engines.
	Nodes int
	// Routed engines deliver a publication only to nodes that declared
	// Interest; the memory engine delivers to its one hub regardless.
	Routed bool
	// NodeTimeout is how long a silent node lives on; reaping tests wait
	// NodeTimeout plus a second. Zero skips the crash tests.
	NodeTimeout time.Duration
}

// Wait is how long any cross-node effect may take in these tests.
const Wait = 5 * time.Second

// Run runs the contract against the engines f builds.
func Run(t *testing.T, f Factory, o Options) {
	if o.Nodes < 1 {
		o.Nodes = 1
	}
	start := func(t *testing.T) (*Cluster, string) {
		locals := make([]*Recorder, o.Nodes)
		for i := range locals {
			locals[i] = NewRecorder()
		}
		c := f(t, locals)
		for i, e := range c.Engines {
			if !e.Ready() {
				t.Fatalf("node %d not ready after the factory returned", i)
			}
		}
		return c, uniqueNamespace(t)
	}
	t.Run("PublishReachesEveryNodeOnce", func(t *testing.T) { c, ns := start(t); testPublish(t, c, ns, o) })
	t.Run("OccupancyTransitionsOnce", func(t *testing.T) { c, ns := start(t); testOccupancy(t, c, ns) })
	t.Run("ChannelQueries", func(t *testing.T) { c, ns := start(t); testChannelQueries(t, c, ns) })
	t.Run("PresenceOneMemberPerUser", func(t *testing.T) { c, ns := start(t); testPresence(t, c, ns) })
	t.Run("PresenceLimitIsAtomic", func(t *testing.T) { c, ns := start(t); testPresenceLimit(t, c, ns) })
	t.Run("UsersAndTerminate", func(t *testing.T) { c, ns := start(t); testUsers(t, c, ns) })
	t.Run("Cache", func(t *testing.T) { c, ns := start(t); testCache(t, c, ns) })
	t.Run("ClaimsLeaveOneOwner", func(t *testing.T) { c, ns := start(t); testClaims(t, c, ns) })
	t.Run("NodeIDsDiffer", func(t *testing.T) {
		c, _ := start(t)
		seen := map[string]bool{}
		for _, e := range c.Engines {
			if e.NodeID() == "" || seen[e.NodeID()] {
				t.Fatalf("node id %q empty or repeated", e.NodeID())
			}
			seen[e.NodeID()] = true
		}
	})
	if o.NodeTimeout > 0 && o.Nodes > 1 {
		t.Run("CrashedNodeIsReapedOnce", func(t *testing.T) { c, ns := start(t); testReap(t, c, ns, o) })
	}
}

func uniqueNamespace(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// result carries a call's value and error so that r(call()).must(t)
// reads as one expression.
type result[T any] struct {
	v   T
	err error
}

func r[T any](v T, err error) result[T] { return result[T]{v, err} }

// check is must for other goroutines, where t.Fatal is not allowed.
func (x result[T]) check(t *testing.T) T {
	t.Helper()
	if x.err != nil {
		t.Error(x.err)
	}
	return x.v
}

func (x result[T]) must(t *testing.T) T {
	t.Helper()
	if x.err != nil {
		t.Fatal(x.err)
	}
	return x.v
}

func testPublish(t *testing.T, c *Cluster, ns string, o Options) {
	n := len(c.Engines)
	for _, e := range c.Engines {
		if err := e.Interest(ctx(t), ns, "news", true); err != nil {
			t.Fatal(err)
		}
	}
	// A channel nobody is interested in, published right before the
	// channel everyone is: a routed engine must not deliver it, and the
	// later publication proves the earlier one had its chance to arrive.
	for i, e := range c.Engines {
		if err := e.Publish(ctx(t), engine.Publication{Namespace: ns, Channel: "nobody", Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		p := engine.Publication{Namespace: ns, Channel: "news", Payload: []byte(fmt.Sprintf(`{"from":%d}`, i)), ExcludeConn: fmt.Sprintf("conn-%d", i), Binary: i%2 == 1}
		if err := e.Publish(ctx(t), p); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range c.Locals {
		l.WaitFor(t, Wait, fmt.Sprintf("node %d: %d publications", i, n), func() bool { return countChannel(l.Deliveries(), "news") >= n })
	}
	for i, l := range c.Locals {
		got := map[string]int{}
		for _, p := range l.Deliveries() {
			if p.Channel == "nobody" {
				if o.Routed {
					t.Fatalf("node %d received a channel it has no interest in", i)
				}
				continue
			}
			if p.Namespace != ns {
				t.Fatalf("node %d: namespace %q", i, p.Namespace)
			}
			var from struct{ From int }
			if err := json.Unmarshal(p.Payload, &from); err != nil {
				t.Fatalf("node %d: payload %q", i, p.Payload)
			}
			if p.ExcludeConn != fmt.Sprintf("conn-%d", from.From) || p.Binary != (from.From%2 == 1) {
				t.Fatalf("node %d: publication from %d lost its fields: %+v", i, from.From, p)
			}
			got[string(p.Payload)]++
		}
		for from := range n {
			if k := fmt.Sprintf(`{"from":%d}`, from); got[k] != 1 {
				t.Fatalf("node %d received %s %d times, want once", i, k, got[k])
			}
		}
	}

	// Interest off: routed engines stop delivering there; a later
	// publication that does arrive elsewhere proves it was sent.
	if o.Routed && n > 1 {
		if err := c.Engines[n-1].Interest(ctx(t), ns, "news", false); err != nil {
			t.Fatal(err)
		}
		before := countChannel(c.Locals[n-1].Deliveries(), "news")
		if err := c.Engines[0].Publish(ctx(t), engine.Publication{Namespace: ns, Channel: "news", Payload: []byte(`{"from":99}`)}); err != nil {
			t.Fatal(err)
		}
		c.Locals[0].WaitFor(t, Wait, "node 0 gets its own publication", func() bool { return countChannel(c.Locals[0].Deliveries(), "news") > n })
		// Node 1 (still interested) gets it too, after which the lost node
		// had as long as a node that did get it.
		if n > 2 {
			c.Locals[1].WaitFor(t, Wait, "node 1 gets it", func() bool { return countChannel(c.Locals[1].Deliveries(), "news") > n })
		}
		if after := countChannel(c.Locals[n-1].Deliveries(), "news"); after != before {
			t.Fatalf("node %d got a publication after dropping interest", n-1)
		}
	}
}

func countChannel(ps []engine.Publication, ch string) int {
	k := 0
	for _, p := range ps {
		if p.Channel == ch {
			k++
		}
	}
	return k
}

// testOccupancy runs rounds in which every node subscribes and then
// unsubscribes at once: every round must be occupied once and vacated
// once, whoever wins the races (soketi#616 fails this).
func testOccupancy(t *testing.T, c *Cluster, ns string) {
	const rounds = 50
	var occupied, vacated int
	var mu sync.Mutex
	for range rounds {
		var wg sync.WaitGroup
		for _, e := range c.Engines {
			wg.Go(func() {
				n := r(e.Occupancy(ctx(t), ns, "room", 1)).check(t)
				mu.Lock()
				if n == 1 {
					occupied++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, e := range c.Engines {
			wg.Go(func() {
				n := r(e.Occupancy(ctx(t), ns, "room", -1)).check(t)
				mu.Lock()
				if n == 0 {
					vacated++
				}
				if n < 0 {
					t.Errorf("occupancy went negative: %d", n)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if occupied != rounds || vacated != rounds {
		t.Fatalf("%d rounds gave %d occupied and %d vacated, want %d each", rounds, occupied, vacated, rounds)
	}
	// A -1 with nothing counted is a no-op, never negative, never a
	// second vacated.
	if n := r(c.Engines[0].Occupancy(ctx(t), ns, "room", -1)).must(t); n != 0 {
		t.Fatalf("extra -1 returned %d", n)
	}
	if n := r(c.Engines[0].Occupancy(ctx(t), ns, "room", 1)).must(t); n != 1 {
		t.Fatalf("after an extra -1, +1 returned %d, want 1 (occupied)", n)
	}
}

func testChannelQueries(t *testing.T, c *Cluster, ns string) {
	for i, e := range c.Engines {
		r(e.Occupancy(ctx(t), ns, "presence-lobby", 1)).must(t)
		r(e.PresenceAdd(ctx(t), ns, "presence-lobby", fmt.Sprintf("c%d", i), engine.Member{UserID: fmt.Sprintf("u%d", i%2)}, 0)).must(t)
		r(e.Occupancy(ctx(t), ns, "private-a", 1)).must(t)
	}
	r(c.Engines[0].Occupancy(ctx(t), ns, "other", 1)).must(t)
	n := len(c.Engines)
	users := min(n, 2)
	for i, e := range c.Engines {
		all := r(e.Channels(ctx(t), ns, "")).must(t)
		want := map[string]engine.ChannelStats{
			"presence-lobby": {Subscriptions: n, Users: users},
			"private-a":      {Subscriptions: n},
			"other":          {Subscriptions: 1},
		}
		if fmt.Sprint(sortedStats(all)) != fmt.Sprint(sortedStats(want)) {
			t.Fatalf("node %d Channels = %v, want %v", i, all, want)
		}
		pre := r(e.Channels(ctx(t), ns, "presence-")).must(t)
		if len(pre) != 1 {
			t.Fatalf("node %d prefix query = %v", i, pre)
		}
		st, ok, err := e.Channel(ctx(t), ns, "presence-lobby")
		if err != nil || !ok || st != want["presence-lobby"] {
			t.Fatalf("node %d Channel = %v %v %v", i, st, ok, err)
		}
		if _, ok, _ := e.Channel(ctx(t), ns, "presence-lobb"); ok {
			t.Fatalf("node %d: Channel matched a prefix", i)
		}
		if k := r(e.PresenceCount(ctx(t), ns, "presence-lobby")).must(t); k != users {
			t.Fatalf("node %d PresenceCount = %d", i, k)
		}
	}
	if other := r(c.Engines[0].Channels(ctx(t), ns+"x", "")).must(t); len(other) != 0 {
		t.Fatalf("namespaces leak: %v", other)
	}
}

func sortedStats(m map[string]engine.ChannelStats) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d/%d", k, v.Subscriptions, v.Users))
	}
	sort.Strings(out)
	return out
}

func testPresence(t *testing.T, c *Cluster, ns string) {
	n := len(c.Engines)
	info := json.RawMessage(`{"name":"Ann"}`)
	firsts := 0
	for i, e := range c.Engines {
		// Two tabs per node for the same user.
		for tab := range 2 {
			if r(e.PresenceAdd(ctx(t), ns, "presence-x", fmt.Sprintf("n%d-t%d", i, tab), engine.Member{UserID: "ann", Info: info}, 0)).must(t) {
				firsts++
			}
		}
	}
	r(c.Engines[n-1].PresenceAdd(ctx(t), ns, "presence-x", "bob-1", engine.Member{UserID: "bob"}, 0)).must(t)
	if firsts != 1 {
		t.Fatalf("ann's %d connections gave %d member_added, want 1", 2*n, firsts)
	}
	for i, e := range c.Engines {
		ms := r(e.PresenceMembers(ctx(t), ns, "presence-x")).must(t)
		if len(ms) != 2 || ms[0].UserID != "ann" || string(ms[0].Info) != string(info) || ms[1].UserID != "bob" {
			t.Fatalf("node %d members = %s", i, membersString(ms))
		}
	}
	lasts := 0
	for i, e := range c.Engines {
		for tab := range 2 {
			if r(e.PresenceRemove(ctx(t), ns, "presence-x", fmt.Sprintf("n%d-t%d", i, tab), "ann")).must(t) {
				lasts++
				if i != n-1 || tab != 1 {
					t.Fatalf("member_removed at node %d tab %d, before ann's last connection left", i, tab)
				}
			}
		}
	}
	if lasts != 1 {
		t.Fatalf("member_removed %d times, want 1", lasts)
	}
	// Removing an unknown connection is a no-op.
	if r(c.Engines[0].PresenceRemove(ctx(t), ns, "presence-x", "nobody", "ann")).must(t) {
		t.Fatal("removing an unknown connection reported member_removed")
	}
	if ms := r(c.Engines[0].PresenceMembers(ctx(t), ns, "presence-x")).must(t); len(ms) != 1 || ms[0].UserID != "bob" {
		t.Fatalf("members after ann left = %s", membersString(ms))
	}
}

func membersString(ms []engine.Member) string {
	b, _ := json.Marshal(ms)
	return string(b)
}

func testPresenceLimit(t *testing.T, c *Cluster, ns string) {
	const limit, tries = 5, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, full := 0, 0
	for i := range tries {
		e := c.Engines[i%len(c.Engines)]
		wg.Go(func() {
			_, err := e.PresenceAdd(ctx(t), ns, "presence-cap", fmt.Sprintf("c%d", i), engine.Member{UserID: fmt.Sprintf("u%02d", i)}, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, engine.ErrFull):
				full++
			default:
				t.Errorf("PresenceAdd: %v", err)
			}
		})
	}
	wg.Wait()
	if admitted != limit || full != tries-limit {
		t.Fatalf("%d concurrent joins at limit %d: %d admitted, %d full", tries, limit, admitted, full)
	}
	// An admitted user may add connections at the limit.
	ms := r(c.Engines[0].PresenceMembers(ctx(t), ns, "presence-cap")).must(t)
	if _, err := c.Engines[len(c.Engines)-1].PresenceAdd(ctx(t), ns, "presence-cap", "tab2", ms[0], limit); err != nil {
		t.Fatalf("a member's second connection at the limit: %v", err)
	}
}

func testUsers(t *testing.T, c *Cluster, ns string) {
	n := len(c.Engines)
	firsts := 0
	for i, e := range c.Engines {
		if r(e.UserOnline(ctx(t), ns, "ann", fmt.Sprintf("c%d", i))).must(t) {
			firsts++
		}
	}
	if firsts != 1 {
		t.Fatalf("online %d times, want 1", firsts)
	}
	for i, e := range c.Engines {
		on := r(e.OnlineUsers(ctx(t), ns, []string{"bob", "ann"})).must(t)
		if len(on) != 1 || on[0] != "ann" {
			t.Fatalf("node %d OnlineUsers = %v", i, on)
		}
	}
	if err := c.Engines[0].TerminateUser(ctx(t), ns, "ann"); err != nil {
		t.Fatal(err)
	}
	for i, l := range c.Locals {
		l.WaitFor(t, Wait, fmt.Sprintf("node %d terminates ann", i), func() bool { return len(l.Terminated()) > 0 })
	}
	for i, l := range c.Locals {
		if got := l.Terminated(); len(got) != 1 || got[0] != ns+"/ann" {
			t.Fatalf("node %d terminations %v", i, got)
		}
	}
	lasts := 0
	for i, e := range c.Engines {
		if r(e.UserOffline(ctx(t), ns, "ann", fmt.Sprintf("c%d", i))).must(t) {
			lasts++
			if i != n-1 {
				t.Fatalf("offline at node %d, before the last connection", i)
			}
		}
	}
	if lasts != 1 {
		t.Fatalf("offline %d times, want 1", lasts)
	}
	if on := r(c.Engines[0].OnlineUsers(ctx(t), ns, []string{"ann"})).must(t); len(on) != 0 {
		t.Fatalf("ann still online: %v", on)
	}
	if r(c.Engines[0].UserOffline(ctx(t), ns, "ann", "c0")).must(t) {
		t.Fatal("a second offline for a gone connection")
	}
}

func testCache(t *testing.T, c *Cluster, ns string) {
	last := c.Engines[len(c.Engines)-1]
	if _, _, ok, err := last.CacheGet(ctx(t), ns, "cache-a"); err != nil || ok {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	ttl := 2 * time.Second
	if err := c.Engines[0].CacheSet(ctx(t), ns, "cache-a", []byte("one"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := c.Engines[0].CacheSet(ctx(t), ns, "cache-a", []byte("two"), ttl); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(Wait)
	for {
		p, left, ok, err := last.CacheGet(ctx(t), ns, "cache-a")
		if err != nil {
			t.Fatal(err)
		}
		if ok && string(p) == "two" {
			if left <= 0 || left > ttl {
				t.Fatalf("remaining ttl %v outside (0, %v]", left, ttl)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last node reads %q ok=%v, want the last write", p, ok)
		}
		time.Sleep(20 * time.Millisecond) // a store read, not an event: poll
	}
	if c.Advance != nil {
		c.Advance(ttl)
	} else {
		time.Sleep(ttl + 200*time.Millisecond)
	}
	for i, e := range c.Engines {
		if p, _, ok, err := e.CacheGet(ctx(t), ns, "cache-a"); err != nil || ok {
			t.Fatalf("node %d reads %q after its ttl (err %v)", i, p, err)
		}
	}
}

func testClaims(t *testing.T, c *Cluster, ns string) {
	n := len(c.Engines)
	// Sequential: a later claim from another node kicks the earlier owner
	// on the node that holds it.
	if prev := r(c.Engines[0].Claim(ctx(t), ns, "0xabc", "a")).must(t); prev != "" {
		t.Fatalf("first claim had prev %q", prev)
	}
	if prev := r(c.Engines[n-1].Claim(ctx(t), ns, "0xabc", "b")).must(t); prev != "a" {
		t.Fatalf("second claim prev = %q, want a", prev)
	}
	c.Locals[0].WaitFor(t, Wait, "the first owner is kicked on its node", func() bool { return contains(c.Locals[0].Kicked(), ns+"/a/0xabc") })
	if ok := r(c.Engines[0].Release(ctx(t), ns, "0xabc", "a")).must(t); ok {
		t.Fatal("a kicked owner released the new owner's claim")
	}
	if ok := r(c.Engines[n-1].Release(ctx(t), ns, "0xabc", "b")).must(t); !ok {
		t.Fatal("the owner could not release its claim")
	}

	// Concurrent: every node claims at once; one owner remains and every
	// other claimant is kicked exactly once.
	var wg sync.WaitGroup
	prevs := make([]string, 2*n)
	for i := range 2 * n {
		e := c.Engines[i%n]
		wg.Go(func() { prevs[i] = r(e.Claim(ctx(t), ns, "0xdef", fmt.Sprintf("k%d", i))).check(t) })
	}
	wg.Wait()
	seen := map[string]int{}
	for _, p := range prevs {
		if p != "" {
			seen[p]++
		}
	}
	if len(seen) != 2*n-1 {
		t.Fatalf("claims returned prevs %v: want %d distinct losers", prevs, 2*n-1)
	}
	for p, k := range seen {
		if k != 1 {
			t.Fatalf("%s was displaced %d times", p, k)
		}
	}
	var owner string
	for i := range 2 * n {
		if k := fmt.Sprintf("k%d", i); seen[k] == 0 {
			owner = k
		}
	}
	waitKicks := func() int {
		total := 0
		for _, l := range c.Locals {
			for _, k := range l.Kicked() {
				if len(k) > len(ns) && k[len(ns)+1:len(ns)+2] == "k" {
					total++
				}
			}
		}
		return total
	}
	WaitForAll(t, c.Locals, Wait, "every loser kicked", func() bool { return waitKicks() >= 2*n-1 })
	if got := waitKicks(); got != 2*n-1 {
		t.Fatalf("%d kicks for %d losers", got, 2*n-1)
	}
	for _, l := range c.Locals {
		if contains(l.Kicked(), ns+"/"+owner+"/0xdef") {
			t.Fatalf("the owner %s was kicked", owner)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// testReap crashes the last node while it holds a channel's last
// subscriber, a presence member and a signed-in user, and expects exactly
// one surviving node to be handed each transition within NodeTimeout + 1 s.
func testReap(t *testing.T, c *Cluster, ns string, o Options) {
	n := len(c.Engines)
	dead, live := c.Engines[n-1], c.Engines[0]
	r(live.Occupancy(ctx(t), ns, "shared", 1)).must(t)
	r(dead.Occupancy(ctx(t), ns, "shared", 1)).must(t)
	r(dead.Occupancy(ctx(t), ns, "only-dead", 1)).must(t)
	r(live.PresenceAdd(ctx(t), ns, "presence-p", "l1", engine.Member{UserID: "both"}, 0)).must(t)
	r(dead.PresenceAdd(ctx(t), ns, "presence-p", "d1", engine.Member{UserID: "both"}, 0)).must(t)
	r(dead.PresenceAdd(ctx(t), ns, "presence-p", "d2", engine.Member{UserID: "deadonly"}, 0)).must(t)
	r(dead.UserOnline(ctx(t), ns, "deaduser", "d3")).must(t)
	crashed := time.Now()
	c.Crash(n - 1)

	survivors := c.Locals[:n-1]
	all := func() []engine.Orphan {
		var out []engine.Orphan
		for _, l := range survivors {
			for _, x := range l.Orphans() {
				if x.Namespace == ns {
					out = append(out, x)
				}
			}
		}
		return out
	}
	WaitForAll(t, survivors, o.NodeTimeout+time.Second+Wait, "three orphans", func() bool { return len(all()) >= 3 })
	took := time.Since(crashed)
	want := []string{"1/only-dead/", "2/presence-p/deadonly", "3//deaduser"}
	var got []string
	for _, x := range all() {
		got = append(got, fmt.Sprintf("%d/%s/%s", x.Kind, x.Channel, x.Member.UserID))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
	if took > o.NodeTimeout+time.Second {
		t.Logf("reaped after %v (node timeout %v): slower than node_timeout + 1 s", took, o.NodeTimeout)
	}
	if st, ok, _ := live.Channel(ctx(t), ns, "shared"); !ok || st.Subscriptions != 1 {
		t.Fatalf("shared after the reap = %v %v, want 1 subscription", st, ok)
	}
	if _, ok, _ := live.Channel(ctx(t), ns, "only-dead"); ok {
		t.Fatal("only-dead still occupied")
	}
	if ms := r(live.PresenceMembers(ctx(t), ns, "presence-p")).must(t); len(ms) != 1 || ms[0].UserID != "both" {
		t.Fatalf("members after the reap = %s", membersString(ms))
	}
	// "both" still has a connection on the live node: its removal there
	// is the real member_removed.
	if !r(live.PresenceRemove(ctx(t), ns, "presence-p", "l1", "both")).must(t) {
		t.Fatal("the live node's last connection did not remove the member")
	}
}
