package talo_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	redisengine "github.com/switchboard-rt/switchboard/internal/engine/redis"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
	"github.com/switchboard-rt/switchboard/internal/redistest"
)

// Talo across a cluster: n servers, each with its own hub on one real
// redis-server (one key prefix per test) and its own HTTP listener, sharing
// one store, as nodes share one PostgreSQL in production (docs/talo.md
// "Across a cluster"; the Node suite runs the same on real processes with
// PostgreSQL: scripts/test.sh talo-redis). Tickets, socket tokens and rate
// limits live in the engine's KV, pushes cross nodes through the hub.

// newClusterEnvs starts n nodes serving one game (created on node 0).
func newClusterEnvs(t *testing.T, n int) []*env {
	t.Helper()
	rs := redistest.Start(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "talo" + hex.EncodeToString(b) + ":"
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "talo.db"), Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	envs := make([]*env, n)
	for i := range envs {
		eng := redisengine.New(redisengine.Options{
			URL: rs.URL(), NodeName: fmt.Sprintf("n%d", i), Prefix: prefix,
			Heartbeat: 200 * time.Millisecond, NodeTimeout: 2 * time.Second, Logger: testLogger(),
		})
		m := metrics.New()
		h := hub.New(eng, m)
		ctx, cancel := context.WithCancel(context.Background())
		if err := h.Start(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); _ = eng.Close() })
		s, err := talo.NewServer(talo.Options{Hub: h, Metrics: m, Logger: testLogger(), Store: st,
			DisableRateLimits: true, Now: func() time.Time { return fixedNow }})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		if err := s.Mount(mux); err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		envs[i] = &env{t: t, srv: s, http: hs, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http"), client: hs.Client(), metrics: m}
	}
	game, err := envs[0].srv.CreateGame(context.Background(), "Cluster game")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		e.game = game
	}
	return envs
}

// A ticket issued by one node is redeemed on another, once: a second use
// on either node closes with 3000.
func TestClusterTicketAcrossNodes(t *testing.T) {
	nodes := newClusterEnvs(t, 2)
	a, b := nodes[0], nodes[1]
	ticket := a.ticket(a.key("read:players"))
	c := b.dial("/talo/?ticket=" + ticket)
	c.expect(`{"res":"v1.connected","data":{}}`)
	for _, n := range nodes {
		again := n.dial("/talo/?ticket=" + ticket)
		if code, _ := again.expectClosed(); code != 3000 {
			t.Fatalf("reused ticket: close %d, want 3000", code)
		}
	}
	c.silent()
}

// Concurrent redemptions of one ticket on three nodes admit exactly one
// socket: KVTake is atomic in the engine, not per node.
func TestClusterTicketRaceAcrossNodes(t *testing.T) {
	nodes := newClusterEnvs(t, 3)
	ticket := nodes[0].ticket(nodes[0].key("read:players"))
	const tries = 12
	var wg sync.WaitGroup
	results := make(chan string, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := nodes[i%len(nodes)].dial("/talo/?ticket=" + ticket)
			select {
			case f := <-c.frames:
				results <- string(f.payload)
			case <-c.done:
				c.closeMu.Lock()
				defer c.closeMu.Unlock()
				if c.closeAt != nil && len(c.closeAt.payload) >= 2 && c.closeAt.payload[0] == 0x0b && c.closeAt.payload[1] == 0xb8 {
					results <- "3000"
					return
				}
				results <- "closed without 3000"
			case <-time.After(5 * time.Second):
				results <- "no answer"
			}
		}()
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts[`{"res":"v1.connected","data":{}}`] != 1 || counts["3000"] != tries-1 {
		t.Fatalf("results %v, want one v1.connected and %d closes 3000", counts, tries-1)
	}
}

// A socket token made by one node's HTTP identify is accepted by another
// node's socket, and presence and channel messages cross nodes.
func TestClusterPresenceAndChannelAcrossNodes(t *testing.T) {
	nodes := newClusterEnvs(t, 2)
	a, b := nodes[0], nodes[1]
	key := a.key("read:players", "write:players", "read:playerPresence", "read:gameChannels", "write:gameChannels")
	ann := a.identify(key, "username", "ann")
	bob := b.identify(key, "username", "bob")

	ca := b.connect(key) // ann's socket on node B, her token from node A
	annOnline := identifySocket(t, ca, ann, "ann")
	cb := a.connect(key)
	bobOnline := identifySocket(t, cb, bob, "bob")
	ca.expect(presenceUpdated(bobOnline, true, "", true, true))

	alias := func(p player) []string {
		return []string{"X-Talo-Alias", fmt.Sprint(p.aliasID), "X-Talo-Player", p.playerID}
	}
	r := a.do("POST", "/v1/game-channels", key, `{"name":"general"}`, alias(ann)...)
	var v struct{ Channel struct{ ID int64 } }
	r.json(t, &v)
	ch := channelJSON(v.Channel.ID, "general", annOnline, 0)
	ca.expect(`{"res":"v1.channels.player-joined","data":{"channel":` + ch + `,"playerAlias":` + annOnline + `}}`)
	b.do("POST", fmt.Sprintf("/v1/game-channels/%d/join", v.Channel.ID), key, "", alias(bob)...).expect(t, 200, `{"channel":`+withCount(ch, 2)+`}`)
	joined := `{"res":"v1.channels.player-joined","data":{"channel":` + ch + `,"playerAlias":` + bobOnline + `}}`
	ca.expect(joined)
	cb.expect(joined)

	ca.send(fmt.Sprintf(`{"req":"v1.channels.message","data":{"channel":{"id":%d},"message":"hi"}}`, v.Channel.ID))
	msg := `{"res":"v1.channels.message","data":{"channel":` + ch + `,"message":"hi","playerAlias":` + annOnline + `}}`
	ca.expect(msg)
	cb.expect(msg)

	// bob's socket closes on node A: ann, on node B, hears him go offline.
	_ = cb.conn.Close()
	ca.expect(presenceUpdated(aliasJSON(bob, "bob", presenceLite(false, "")), false, "", true, true))
	ca.silent()
}
