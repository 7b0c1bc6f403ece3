package pusher

// The protocol layer's own cost per operation, for issue 11 (CPU per
// operation; docs/performance.md, "Pusher protocol path"):
//
//	go test -run '^$' -bench 'PusherPath' -benchmem -count 6 ./internal/protocol/pusher/
//
// Each benchmark calls the session's HandleMessage directly with the bytes
// a real client's frame carries (what the transport's reader goroutine
// does), on sessions of real loopback connections whose clients drain
// every frame. ns/op is the server's handling plus the write loops it
// wakes; allocs/op counts the whole process (server and draining clients).

import (
	"bufio"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// drainer counts the text frames its clients receive.
type drainer struct {
	frames atomic.Int64
	done   chan struct{}
	n      int
}

func drainClients(clients []*client) *drainer {
	d := &drainer{done: make(chan struct{}, len(clients)), n: len(clients)}
	for _, c := range clients {
		go func() {
			defer func() { d.done <- struct{}{} }()
			_ = c.nc.SetReadDeadline(time.Time{})
			r := bufio.NewReaderSize(c.nc, 32<<10)
			for {
				op, n, err := readServerHeader(r)
				if err != nil {
					return
				}
				if _, err := r.Discard(int(n)); err != nil {
					return
				}
				if op == ws.OpText {
					d.frames.Add(1)
				}
			}
		}()
	}
	return d
}

// readServerHeader reads an unmasked frame header without allocating
// (ws.ReadHeader allocates per call, which would blur allocs/op).
func readServerHeader(r *bufio.Reader) (ws.OpCode, uint64, error) {
	b0, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	b1, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	op, n := ws.OpCode(b0&0x0f), uint64(b1&0x7f)
	ext := 0
	switch n {
	case 126:
		ext, n = 2, 0
	case 127:
		ext, n = 8, 0
	}
	for range ext {
		c, err := r.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		n = n<<8 | uint64(c)
	}
	return op, n, nil
}

// waitFor waits until at least n frames arrived in all.
func (d *drainer) waitFor(n int64) {
	for d.frames.Load() < n {
		time.Sleep(20 * time.Microsecond)
	}
}

func (d *drainer) stop(clients []*client) {
	for _, c := range clients {
		_ = c.nc.Close()
	}
	for range d.n {
		<-d.done
	}
}

// sessionOf returns the server's session for a client.
func (e *testEnv) sessionOf(c *client) *session {
	for _, ss := range e.srv.sessions.AppendTo(nil) {
		if ss.id == c.socketID {
			return ss
		}
	}
	e.t.Fatalf("no session %s", c.socketID)
	return nil
}

func benchEnv(b *testing.B) *testEnv {
	return newEnv(b, func(c *config.Config) {
		c.Pusher.Apps[0].Limits.ClientEventsPerSecond = 1 << 30
		c.Pusher.ActivityTimeout = config.Duration(time.Hour)
	})
}

// paced runs op b.N times, letting at most window operations' frames be
// in flight so that no send queue overflows.
func paced(b *testing.B, d *drainer, perOp int64, op func()) {
	const window = 16
	base := d.frames.Load()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := range b.N {
		if i >= window {
			d.waitFor(base + int64(i-window)*perOp)
		}
		op()
	}
	d.waitFor(base + int64(b.N)*perOp)
	b.StopTimer()
	// Process CPU (server, write loops and draining clients) per op: less
	// sensitive than ns/op to the waits of a loaded machine.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPusherPathClientEvent: one member of a 10-member private or
// presence channel (the client-events scenario's size) sends a client
// event with a 100-byte payload; the 9 others receive it.
func BenchmarkPusherPathClientEvent(b *testing.B) {
	for _, channel := range []string{"private-bench", "presence-bench"} {
		b.Run(channel, func(b *testing.B) {
			e := benchEnv(b)
			clients := make([]*client, 10)
			for i := range clients {
				clients[i] = e.connect()
				cd := ""
				if channel == "presence-bench" {
					cd = `{"user_id":"user-` + strconv.Itoa(i) + `","user_info":{"name":"n"}}`
				}
				clients[i].join(channel, cd)
			}
			// Presence clients also got member_added for later joiners.
			d := drainClients(clients)
			sender := e.sessionOf(clients[0])
			msg := []byte(`{"event":"client-move","channel":"` + channel + `","data":{"x":1,"y":2,"text":"` +
				string(make100()) + `"}}`)
			paced(b, d, 9, func() { sender.HandleMessage(msg, false) })
			d.stop(clients)
		})
	}
}

func make100() []byte {
	b := make([]byte, 80)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// BenchmarkPusherPathPresence: a member joins and leaves a presence
// channel of 10 members (one op = subscribe + unsubscribe); the 10 others
// receive member_added and member_removed, the joiner its
// subscription_succeeded with the member list.
func BenchmarkPusherPathPresence(b *testing.B) {
	e := benchEnv(b)
	const channel = "presence-bench"
	clients := make([]*client, 11)
	for i := range clients {
		clients[i] = e.connect()
	}
	for i, c := range clients[:10] {
		c.join(channel, `{"user_id":"user-`+strconv.Itoa(i)+`","user_info":{"name":"member `+strconv.Itoa(i)+`"}}`)
	}
	joiner := clients[10]
	cd := `{"user_id":"joiner","user_info":{"name":"the joiner"}}`
	sub, _ := json.Marshal(map[string]string{
		"channel": channel, "channel_data": cd,
		"auth": signAuth(joiner.socketID, channel, cd),
	})
	subscribe := []byte(`{"event":"pusher:subscribe","data":` + string(sub) + `}`)
	unsubscribe := []byte(`{"event":"pusher:unsubscribe","data":{"channel":"` + channel + `"}}`)
	d := drainClients(clients)
	ss := e.sessionOf(joiner)
	paced(b, d, 21, func() {
		ss.HandleMessage(subscribe, false)
		ss.HandleMessage(unsubscribe, false)
	})
	d.stop(clients)
}

func signAuth(socketID, channel, channelData string) string {
	return pushersign.ChannelAuth("app-key", "app-secret", socketID, channel, channelData)
}

// BenchmarkEnvelopeDecode: reading a client event and building its
// outgoing frame, the decoder-and-writer way and the scan-and-splice way.
func BenchmarkEnvelopeDecode(b *testing.B) {
	msg := []byte(`{"event":"client-move","channel":"private-bench","data":{"x":1,"y":2,"text":"` +
		string(make100()) + `"}}`)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			env, err := DecodeEnvelope(msg)
			if err != nil {
				b.Fatal(err)
			}
			_ = newEvent(env.Event).channel(env.Channel).dataRaw(env.Data).bytes()
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			env, ok := scanEnvelope(msg)
			if !ok {
				b.Fatal("declined")
			}
			_ = clientEventFrame(env.event, "private-bench", env.data, "")
		}
	})
}

// BenchmarkMemberFrames: member_added, the encoding/json way and by hand.
func BenchmarkMemberFrames(b *testing.B) {
	info := []byte(`{"name":"the joiner","avatar":"a1b2c3d4"}`)
	b.Run("dataJSON", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = newEvent("pusher_internal:member_added").channel("presence-bench").
				dataJSON(map[string]any{"user_id": "joiner", "user_info": json.RawMessage(info)}).bytes()
		}
	})
	b.Run("memberAdded", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = memberAdded("presence-bench", "joiner", info)
		}
	})
}
