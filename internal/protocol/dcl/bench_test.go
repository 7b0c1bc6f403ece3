package dcl

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// fakeConn is a transport.Conn that keeps the last message and counts the
// rest: the server's share of a relay, without sockets.
type fakeConn struct {
	id   uint64
	last atomic.Pointer[transport.Message]
	sent atomic.Int64
}

func (f *fakeConn) ID() uint64           { return f.id }
func (f *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (f *fakeConn) Send(m *transport.Message) error {
	f.last.Store(m)
	f.sent.Add(1)
	return nil
}
func (f *fakeConn) Close(uint16, string) {}
func (f *fakeConn) Ping()                {}
func (f *fakeConn) LastRead() time.Time  { return time.Now() }
func (f *fakeConn) QueuedBytes() int     { return 0 }
func (f *fakeConn) lastPacket() *dclpb.WsPacket {
	p := &dclpb.WsPacket{}
	if m := f.last.Load(); m != nil {
		_ = proto.Unmarshal(m.Payload, p)
	}
	return p
}

func mustMarshal(b testing.TB, p *dclpb.WsPacket) []byte {
	out, err := proto.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// joinFake runs a real handshake (real auth chain) on a fake connection.
func joinFake(b testing.TB, s *Server, room string, id uint64) (*session, *fakeConn) {
	b.Helper()
	fc := &fakeConn{id: id}
	ss := s.newSession(fc, room, "")
	p := newPeer(b)
	ss.HandleMessage(mustMarshal(b, identification(p.wallet.Address)), true)
	ch := fc.lastPacket().GetChallengeMessage()
	if ch == nil {
		b.Fatal("no challenge")
	}
	ss.HandleMessage(mustMarshal(b, signedChallenge(authchaintest.JSON(p.login.Sign(ch.ChallengeToSign)))), true)
	if fc.lastPacket().GetWelcomeMessage() == nil {
		b.Fatal("no welcome")
	}
	return ss, fc
}

// BenchmarkRelayFanout: one peer_update from one peer of a room of n,
// through decode, re-encode, hub fan-out and Send, to n-1 fake connections.
// ns/delivery is the server's cost per recipient, without the socket write.
func BenchmarkRelayFanout(b *testing.B) {
	for _, n := range []int{10, 100, 150} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := metrics.New()
			h := hub.New(memory.New(), m)
			if err := h.Start(ctx); err != nil {
				b.Fatal(err)
			}
			wheel := timewheel.New(100*time.Millisecond, 1024)
			go wheel.Run(ctx)
			s := NewServer(Options{Hub: h, Wheel: wheel, Metrics: m, Logger: testLogger(), HandshakeTimeout: time.Minute})
			var sender *session
			for i := range n {
				ss, _ := joinFake(b, s, "bench", uint64(i+1))
				if i == 0 {
					sender = ss
				}
			}
			frame := mustMarshal(b, &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{PeerUpdateMessage: &dclpb.WsPeerUpdate{
				Body: make([]byte, 100), Unreliable: true}}})
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sender.HandleMessage(frame, true)
			}
			b.StopTimer()
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N*(n-1))
			b.ReportMetric(per, "ns/delivery")
		})
	}
}

// BenchmarkRelayLoopback: the same over real loopback WebSockets: one
// sender, n-1 receivers reading as fast as they can, at most window
// updates in flight. ns/delivery is wall time per (update, recipient),
// client work on the same two cores included.
func BenchmarkRelayLoopback(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.HandshakeTimeout = 10 * time.Second })
			var sender *client
			var receivers []*client
			for i := range n {
				c, _ := e.joined("bench", newPeer(b))
				if i == 0 {
					sender = c
				} else {
					receivers = append(receivers, c)
				}
			}
			// Let the joins land, then count instead of keeping frames.
			time.Sleep(100 * time.Millisecond)
			for _, c := range append(receivers, sender) {
				c.discard.Store(true)
				for len(c.frames) > 0 {
					<-c.frames
				}
			}
			received := func() int64 {
				var t int64
				for _, c := range receivers {
					t += c.count.Load()
				}
				return t
			}
			body := make([]byte, 100)
			const window = 256
			base := received()
			b.ResetTimer()
			for i := range b.N {
				for int64(i-window)*int64(n-1) > received()-base {
					time.Sleep(50 * time.Microsecond)
				}
				sender.update(body, true)
			}
			want := base + int64(b.N)*int64(n-1)
			deadline := time.Now().Add(30 * time.Second)
			for received() < want {
				if time.Now().After(deadline) {
					b.Fatalf("received %d of %d deliveries", received()-base, want-base)
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(n-1)), "ns/delivery")
		})
	}
}
