package dcl

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// The Godot explorer's two-link chain, signed by the wallet itself.
func TestGodotSimpleChain(t *testing.T) {
	e := newEnv(t, nil)
	p := newPeer(t)
	c := e.dial("/rooms/godot", "rfc5")
	ch := c.challenge(p)
	c.send(signedChallenge(authchaintest.JSON(p.wallet.SimpleChain(ch.ChallengeToSign))))
	if c.next(2*time.Second, "welcome").GetWelcomeMessage() == nil {
		t.Fatal("no welcome")
	}
}

// The public test identity (owner key unknown, delegation valid until 3021),
// identified in lower case and checksummed alike.
func TestPublicIdentity(t *testing.T) {
	e := newEnv(t, nil)
	d := authchaintest.PublicDelegation()
	for _, id := range []string{authchaintest.PublicOwnerAddress, authchaintest.ChecksumAddress(authchaintest.PublicOwnerAddress)} {
		c := e.dial("/rooms/public")
		c.send(identification(id))
		ch := c.next(time.Second, "challenge").GetChallengeMessage()
		c.send(signedChallenge(authchaintest.JSON(d.Sign(ch.ChallengeToSign))))
		if c.next(2*time.Second, "welcome").GetWelcomeMessage() == nil {
			t.Fatal("no welcome")
		}
	}
}

// With require_owner_match off (the reference), a chain owned by another
// wallet is accepted and the room knows the peer by the chain owner.
func TestOwnerMismatchAllowed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowOwnerMismatch = true })
	alice, mallory := newPeer(t), newPeer(t)
	ca, _ := e.joined("o", alice)
	c := e.dial("/rooms/o")
	c.send(identification(alice.addr))
	ch := c.next(time.Second, "challenge").GetChallengeMessage()
	if !ch.AlreadyConnected {
		t.Error("already_connected false for alice's address")
	}
	c.send(signedChallenge(authchaintest.JSON(mallory.login.Sign(ch.ChallengeToSign))))
	if c.next(2*time.Second, "welcome").GetWelcomeMessage() == nil {
		t.Fatal("no welcome")
	}
	j := ca.next(time.Second, "join").GetPeerJoinMessage()
	if j == nil || j.Address != mallory.addr {
		t.Fatalf("join %v, want mallory's address", j)
	}
}

type stubContracts struct{ wallet string }

func (s stubContracts) VerifyEIP1654(_ context.Context, address string, _, _ []byte) (bool, error) {
	return strings.EqualFold(address, s.wallet), nil
}

// Contract wallets join when a ContractVerifier (eth_rpc_url) is set.
func TestEIP1654WithVerifier(t *testing.T) {
	p := newPeer(t)
	e := newEnv(t, func(o *Options) { o.Contracts = stubContracts{wallet: p.addr} })
	c := e.dial("/rooms/contract")
	ch := c.challenge(p)
	c.send(signedChallenge(authchaintest.JSON(authchain.Chain{
		{Type: authchain.TypeSigner, Payload: p.wallet.Address},
		{Type: authchain.TypeEIP1654SignedEntity, Payload: ch.ChallengeToSign, Signature: "0x" + strings.Repeat("ab", 80)},
	})))
	if c.next(2*time.Second, "welcome").GetWelcomeMessage() == nil {
		t.Fatal("no welcome")
	}
}

func signToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Checklist 25 with a secret: an Archipelago-style token for this room is
// required; a missing, foreign, mis-signed or other-room token is refused
// with 401 before the upgrade, and a peerId must match the identification.
func TestAccessTokenRequiredWithSecret(t *testing.T) {
	const secret = "s3cret"
	e := newEnv(t, func(o *Options) { o.AccessTokenSecret = secret })
	p := newPeer(t)
	aud := "wss://ws-room.example.org/rooms/tok"
	good := signToken(t, secret, jwt.MapClaims{"peerId": p.addr, "aud": aud, "iat": time.Now().Unix()})
	refused := map[string]string{
		"missing":     "",
		"other room":  signToken(t, secret, jwt.MapClaims{"aud": "wss://x/rooms/other"}),
		"no audience": signToken(t, secret, jwt.MapClaims{"peerId": p.addr}),
		"wrong key":   signToken(t, "nope", jwt.MapClaims{"aud": aud}),
		"expired":     signToken(t, secret, jwt.MapClaims{"aud": aud, "exp": time.Now().Add(-time.Hour).Unix()}),
		"garbage":     "a.b.c",
	}
	for name, tok := range refused {
		if _, err := e.tryDial("/rooms/tok?access_token=" + tok); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: dial error %v, want 401", name, err)
		}
	}
	e.waitErr("token_missing", 1)
	e.waitErr("token_invalid", 5)

	c := e.dial("/rooms/tok?access_token=" + good)
	c.join(p)

	other := newPeer(t)
	c2 := e.dial("/rooms/tok?access_token=" + good)
	c2.send(identification(other.addr))
	c2.expectClosed(time.Second, "token for another peer")
	e.waitErr(errTokenPeer, 1)
}

// Without a secret the query is ignored, token or not.
func TestAccessTokenIgnoredWithoutSecret(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("/rooms/x?access_token=not-even-a-jwt&foo=bar")
	c.join(newPeer(t))
	if e.srv.roomSize("x") != 1 {
		t.Fatal("query string changed the room id")
	}
}

// Checklist 27: a peer that stops reading is disconnected when its bounded
// queue overflows, and the rest of its room keeps getting every update at
// full speed meanwhile.
func TestSlowConsumerNeverSlowsTheRoom(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Transport.SendQueueBytes = 256 << 10
		o.MaxMessageBytes = 16 << 10
	})
	sender, fast, slow := newPeer(t), newPeer(t), newPeer(t)
	cs, ws := e.joined("slow", sender)
	cf, _ := e.joined("slow", fast)
	cl, wl := e.joined("slow", slow)
	cs.next(time.Second, "fast's join")
	cs.next(time.Second, "slow's join")
	cf.next(time.Second, "slow's join")
	_ = cl.conn.(*net.TCPConn).SetReadBuffer(4096)
	cl.stalled.Store(true)
	cl.update([]byte("wake the reader up once"), false)
	cs.next(time.Second, "slow's last update")
	cf.next(time.Second, "slow's last update")

	// Lockstep: the sender sends the next update when the fast peer got
	// the last one, so only the stalled peer's queue can grow.
	const n = 3000
	body := make([]byte, 8<<10)
	start := time.Now()
	var worst time.Duration
	for i := range n {
		binary.BigEndian.PutUint32(body, uint32(i))
		sent := time.Now()
		cs.update(body, i%2 == 0)
		p := cf.next(5*time.Second, "update")
		if l := p.GetPeerLeaveMessage(); l != nil && l.Alias == wl.Alias {
			p = cf.next(5*time.Second, "update")
		}
		worst = max(worst, time.Since(sent))
		u := p.GetPeerUpdateMessage()
		if u == nil || u.FromAlias != ws.Alias || binary.BigEndian.Uint32(u.Body) != uint32(i) {
			t.Fatalf("update %d: got %v", i, p)
		}
	}
	took := time.Since(start)
	t.Logf("%d updates of 8 KiB reached the fast peer in %v (worst round trip %v) with a stalled peer in the room", n, took, worst)
	eventually(t, func() bool { return e.metric("switchboard_slow_consumer_disconnects_total", "protocol", "dcl") == 1 }, "slow consumer counted")
	eventually(t, func() bool { return e.srv.roomSize("slow") == 2 }, "slow peer out of the room")
}

// Joins, leaves, kicks and relays racing in one room: every receiver sees,
// per alias, join (or the welcome) before any update, updates in order, and
// nothing after the leave. Run with -race.
func TestConcurrentChurnKeepsOrder(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HandshakeTimeout = 5 * time.Second })
	const stable, churners, rounds, updates = 4, 3, 4, 30

	type recv struct {
		c     *client
		w     uint32
		known map[uint32]bool
	}
	var rs []*recv
	for range stable {
		c, w := e.joined("churn", newPeer(t))
		r := &recv{c: c, w: w.Alias, known: map[uint32]bool{}}
		for a := range w.PeerIdentities {
			r.known[a] = true
		}
		rs = append(rs, r)
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			b := make([]byte, 8)
			for i := range updates * 4 {
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				c.update(b, false)
			}
		}(r.c)
	}
	for range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPeer(t)
			var prev *client
			for range rounds {
				c, err := e.tryDial("/rooms/churn")
				if err != nil {
					t.Error(err)
					return
				}
				c.t = t
				c.join(p) // kicks prev, if still open
				b := make([]byte, 8)
				for i := range updates {
					binary.BigEndian.PutUint32(b[4:], uint32(i))
					c.update(b, i%3 == 0)
				}
				if prev != nil {
					_ = prev.conn.Close()
				}
				prev = c
			}
			_ = prev.conn.Close()
		}()
	}
	wg.Wait()
	eventually(t, func() bool { return e.srv.roomSize("churn") == stable }, "churners gone")
	// Every leave is published by now. Each stable peer sends an end
	// marker after its updates; a receiver has everything once it has the
	// markers of the other stable peers (no waiting for a silence).
	for _, r := range rs {
		r.c.update([]byte("END"), false)
	}

	for _, r := range rs {
		seq := map[uint32]int64{}
		left := map[uint32]bool{}
		ends := 0
		for ends < stable-1 {
			var f frame
			select {
			case f = <-r.c.frames:
			case <-r.c.done:
				t.Fatalf("receiver %d closed", r.w)
			case <-time.After(5 * time.Second):
				t.Fatalf("receiver %d: %d of %d end markers", r.w, ends, stable-1)
			}
			p := decodeFrame(t, f)
			if u := p.GetPeerUpdateMessage(); u != nil && string(u.Body) == "END" {
				ends++
				continue
			}
			switch {
			case p.GetPeerJoinMessage() != nil:
				a := p.GetPeerJoinMessage().Alias
				if r.known[a] || left[a] || a == r.w {
					t.Fatalf("alias %d joined twice or after leaving", a)
				}
				r.known[a] = true
				seq[a] = -1
			case p.GetPeerLeaveMessage() != nil:
				a := p.GetPeerLeaveMessage().Alias
				if !r.known[a] {
					t.Fatalf("leave of unknown alias %d", a)
				}
				delete(r.known, a)
				left[a] = true
			case p.GetPeerUpdateMessage() != nil:
				u := p.GetPeerUpdateMessage()
				if !r.known[u.FromAlias] {
					t.Fatalf("update from alias %d which is not in the room (left: %v)", u.FromAlias, left[u.FromAlias])
				}
				n := int64(binary.BigEndian.Uint32(u.Body[4:]))
				if last, ok := seq[u.FromAlias]; ok && n <= last {
					t.Fatalf("alias %d: update %d after %d", u.FromAlias, n, last)
				}
				seq[u.FromAlias] = n
			default:
				t.Fatalf("unexpected packet %v", p)
			}
		}
		select { // the markers were the last packets: nothing else is queued
		case f := <-r.c.frames:
			t.Fatalf("receiver %d: %v after the end markers", r.w, decodeFrame(t, f))
		default:
		}
		if len(r.known) != stable-1 {
			t.Errorf("receiver %d ends knowing %d peers, want %d", r.w, len(r.known), stable-1)
		}
	}
	if k := e.metric("dcl_ws_rooms_kicks_total"); k != churners*(rounds-1) {
		t.Errorf("kicks %v, want %d", k, churners*(rounds-1))
	}
}

func decodeFrame(t *testing.T, f frame) *dclpb.WsPacket {
	t.Helper()
	p := &dclpb.WsPacket{}
	if err := proto.Unmarshal(f.payload, p); err != nil {
		t.Fatalf("undecodable %x: %v", f.payload, err)
	}
	return p
}

// Compile-time check: sessions are hub subscribers and transport handlers.
var _ transport.Handler = (*session)(nil)

// A session in its handshake closes without the registry's lock, which a
// join holds over its store round trips on a cluster: a failure (or a
// timeout) is not held up by another session's slow join.
func TestAHandshakeCloseDoesNotWaitForAJoin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("/rooms/busy")
	e.waitSessions(1)
	e.srv.mu.Lock() // as a join waiting on the store holds it
	locked := true
	defer func() {
		if locked {
			e.srv.mu.Unlock()
		}
	}()
	c.update([]byte("x"), false) // not an identification: closed at once
	c.expectClosed(2*time.Second, "update before identification")
	e.waitSessions(0)
	e.srv.mu.Unlock()
	locked = false
	if n := e.errCount(errUnexpected); n != 1 {
		t.Fatalf("unexpected_packet counted %v times, want 1", n)
	}
}

// Identification reads the address registry under its own leaf lock: the
// challenge goes out while a join holds the registry.
func TestAChallengeDoesNotWaitForAJoin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("/rooms/busy")
	e.srv.mu.Lock()
	locked := true
	defer func() {
		if locked {
			e.srv.mu.Unlock()
		}
	}()
	c.challenge(newPeer(t)) // fails after 2 s without a challenge
	e.srv.mu.Unlock()
	locked = false
}
