package pusher

// Pusher fan-out over real loopback sockets, for comparison with Talo's
// channel messages (docs/talo.md, "Performance"; docs/benchmarks.md):
//
//	go test -run '^$' -bench 'PusherFanout' -benchtime 200x ./internal/protocol/pusher/
//
// client-event: one subscriber sends a client event on a private channel
// of n subscribers; the n-1 others receive it (Pusher skips the sender).
// trigger: the server publishes an event (what the HTTP API's POST
// /apps/{id}/events does after its checks) to all n. cpu-ns/delivery is
// process CPU per (event, recipient), clients' reading included.

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// benchData is about the size of a Talo channel message's payload, so the
// two benchmarks write similar frames (B/frame reports each).
var benchData = `{"message":"` + strings.Repeat("m", 1100) + `"}`

func BenchmarkPusherFanout(b *testing.B) {
	for _, mode := range []string{"client-event", "trigger"} {
		for _, n := range []int{10, 100, 1000} {
			benchPusherFanout(b, mode, n)
		}
	}
}

func benchPusherFanout(b *testing.B, mode string, n int) {
	e := newEnv(b, func(c *config.Config) {
		c.Pusher.Apps[0].Limits.ClientEventsPerSecond = 1 << 30
		c.Pusher.ActivityTimeout = config.Duration(time.Hour)
	})
	const channel = "private-bench"
	clients := make([]*client, n)
	counts := make([]atomic.Int64, n)
	bytes := make([]atomic.Int64, n)
	done := make(chan struct{}, n)
	for i := range clients {
		clients[i] = e.connect()
		clients[i].join(channel, "")
	}
	for i, c := range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			r := bufio.NewReaderSize(c.nc, 32<<10)
			for {
				h, err := ws.ReadHeader(r)
				if err != nil {
					return
				}
				if _, err := r.Discard(int(h.Length)); err != nil {
					return
				}
				if h.OpCode == ws.OpText {
					bytes[i].Add(h.Length)
					counts[i].Add(1)
				}
			}
		}()
	}
	received := func() (frames, total int64) {
		for i := range counts {
			frames += counts[i].Load()
			total += bytes[i].Load()
		}
		return
	}
	recipients := n
	var send func()
	switch mode {
	case "client-event":
		recipients = n - 1
		frame := `{"event":"client-bench","channel":"` + channel + `","data":` + benchData + `}`
		send = func() {
			if err := wsutil.WriteClientText(clients[0].nc, []byte(frame)); err != nil {
				b.Fatal(err)
			}
		}
	case "trigger":
		ev := TriggerEvent{Name: "bench", Data: benchData, Channels: []string{channel}}
		send = func() {
			if err := e.srv.Trigger(context.Background(), e.app, ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run(fmt.Sprintf("%s/members=%d", mode, n), func(b *testing.B) {
		const window = 32
		base, bytes0 := received()
		cpu0 := processCPU(b)
		b.ResetTimer()
		for i := range b.N {
			for {
				got, _ := received()
				if int64(i-window)*int64(recipients) <= got-base {
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
			send()
		}
		for {
			got, _ := received()
			if got-base >= int64(b.N)*int64(recipients) {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		b.StopTimer()
		deliveries := float64(b.N) * float64(recipients)
		_, bytes1 := received()
		b.ReportMetric(float64(processCPU(b)-cpu0)/deliveries, "cpu-ns/delivery")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
		b.ReportMetric(float64(bytes1-bytes0)/deliveries, "B/frame")
	})
	for _, c := range clients {
		_ = c.nc.Close()
	}
	for range clients {
		<-done
	}
}
