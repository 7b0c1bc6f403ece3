package damon

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// The README's INFO example (~230 bytes), as a GLOBAL EVENT and as a REPLY.
const (
	benchEvent = `{"id":"70653cb0-5f6d-41fe-acbf-ea8f37a73034","op":0,"event":"INFO","data":{"channels":10240,"shardId":"ef4d25","users":15042,"requester":"a6022b4c-09b8-4f7b-8fef-c669618c7d58"},"intent":{"target":"GLOBAL"}}`
	benchReply = `{"id":"70653cb0-5f6d-41fe-acbf-ea8f37a73034","op":5,"event":"INFO","data":{"channels":10240,"shardId":"ef4d25","users":15042,"requester":"a6022b4c-09b8-4f7b-8fef-c669618c7d58"},"intent":{"target":"GLOBAL"}}`
)

func benchServer(b *testing.B, listen string) *Server {
	b.Helper()
	m := metrics.New()
	h := hub.New(memory.New(), m)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(Options{Hub: h, Metrics: m, Logger: quietLogger(), Token: testToken, Listen: listen,
		Transport: transport.Options{SendQueueBytes: 8 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.Drain(dctx)
		dcancel()
	})
	return s
}

// eventPayload is benchEvent as the hub carries it: encoded once by the
// sender, with the slot for each recipient's id.
func eventPayload(tb testing.TB) *transport.Message {
	env, err := wire.ParseEnvelope([]byte(benchEvent))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := (&session{}).encodeEvent(&env)
	if err != nil {
		tb.Fatal(err)
	}
	return transport.Text(p)
}

// Per recipient, the design used: copy the encoded EVENT and patch a uuid.
func BenchmarkDeliverEventPatch(b *testing.B) {
	ss := &session{conn: &fakeConn{discard: true}}
	m := eventPayload(b)
	b.ReportAllocs()
	for b.Loop() {
		ss.Deliver(m)
	}
}

// Per recipient, the alternative: encode the EVENT again for each one.
func BenchmarkDeliverEventReencode(b *testing.B) {
	c := &fakeConn{discard: true}
	doc := []byte(benchEvent)
	b.ReportAllocs()
	for b.Loop() {
		tm, err := wire.NewIDTemplate(doc)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Send(transport.Text(tm.WithID(make([]byte, 0, tm.Len()), newUUID())))
	}
}

// Per recipient, a REPLY: the shared Message as is.
func BenchmarkDeliverReply(b *testing.B) {
	ss := &session{conn: &fakeConn{discard: true}}
	env, _ := wire.ParseEnvelope([]byte(benchReply))
	p, _ := env.AppendCanonical(nil)
	m := transport.Text(p)
	b.ReportAllocs()
	for b.Loop() {
		ss.Deliver(m)
	}
}

// GLOBAL fan-out through the hub to in-memory connections: everything but
// the sockets. One op is one message to all recipients; ns/delivery is the
// number to read.
func BenchmarkGlobalFanout(b *testing.B) {
	for _, doc := range []struct{ name, doc string }{{"event", benchEvent}, {"reply", benchReply}} {
		for _, n := range []int{100, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/recipients=%d", doc.name, n), func(b *testing.B) {
				s := benchServer(b, "")
				var sender *session
				for i := range n {
					ss := s.newSession(&fakeConn{id: uint64(i), discard: true}, false).(*session)
					if sender == nil {
						sender = ss
					}
				}
				in := []byte(doc.doc)
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					sender.handle(in)
				}
				per := float64(time.Since(start).Nanoseconds()) / float64(b.N) / float64(n)
				b.ReportMetric(per, "ns/delivery")
			})
		}
	}
}

// GLOBAL fan-out end to end over loopback TCP: a real client sends, every
// client (sender included) reads and counts bytes. The sender keeps at
// most a window of messages in flight so that queues stay bounded.
func BenchmarkGlobalFanoutTCP(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			s := benchServer(b, "127.0.0.1:0")
			addr := s.Addr().String()
			env, _ := wire.ParseEnvelope([]byte(benchEvent))
			tm, _ := env.IDTemplate()
			size := int64(tm.Len())
			conns := make([]net.Conn, n)
			got := make([]atomic.Int64, n)
			for i := range n {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
				go func(i int) {
					buf := make([]byte, 64<<10)
					for {
						k, err := c.Read(buf)
						got[i].Add(int64(k))
						if err != nil {
							return
						}
					}
				}(i)
			}
			b.Cleanup(func() {
				for _, c := range conns {
					_ = c.Close()
				}
			})
			for s.Sessions() < n {
				time.Sleep(time.Millisecond)
			}
			waitAll := func(msgs int64) {
				deadline := time.Now().Add(30 * time.Second)
				for i := range got {
					for got[i].Load() < msgs*size {
						if time.Now().After(deadline) {
							b.Fatalf("client %d: %d of %d bytes", i, got[i].Load(), msgs*size)
						}
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			const window = 64
			sent := int64(0)
			base := int64(0)
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := io.WriteString(conns[0], benchEvent); err != nil {
					b.Fatal(err)
				}
				sent++
				if sent-base >= window {
					waitAll(sent - window/2)
					base = sent - window/2
				}
			}
			waitAll(sent)
			per := float64(time.Since(start).Nanoseconds()) / float64(sent) / float64(n)
			b.ReportMetric(per, "ns/delivery")
			for i := range got {
				got[i].Store(0)
			}
		})
	}
}
