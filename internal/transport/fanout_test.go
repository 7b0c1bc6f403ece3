package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// drainClient reads frames until EOF, recording the send timestamps
// embedded in each payload's first 8 bytes.
func drainClient(t testing.TB, nc net.Conn, br *bufio.Reader, want int, got chan<- time.Duration) {
	for i := 0; i < want; i++ {
		_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		h, err := ws.ReadHeader(br)
		if err != nil {
			t.Errorf("reader: %v after %d frames", err, i)
			return
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Errorf("reader: %v", err)
			return
		}
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(p)))
		if got != nil {
			got <- time.Since(sent)
		}
	}
}

func TestStalledReaderIsDisconnectedWithoutDelayingOthers(t *testing.T) {
	// A 10 s write timeout: were Send to block on the stalled socket, the
	// healthy readers' latency would show it in seconds, not milliseconds.
	// The latency is logged, not asserted (timings belong in benchmarks;
	// BenchmarkFanout measures the send path): the test asserts what users
	// see, every message reaching the healthy readers and the stalled one
	// closed as a slow consumer.
	// An 8 MiB bound gives healthy readers half a second of slack at the
	// paced rate below, even under -race on a loaded 2-core machine; the
	// stalled one must absorb far more (32 MiB) and so overflows for sure.
	// Parked readers (the production setup): the stalled connection never
	// sends, so only the writer's failure can end it.
	up := &Upgrader{Poller: newTestPoller(t), Options: Options{SendQueueBytes: 8 << 20, WriteTimeout: 10 * time.Second, SlowConsumerCode: 4100}}
	s := newWSServer(t, up, false)

	const healthy, messages, size = 3, 8000, 4 << 10
	stalled, _ := dialRaw(t, s.URL, "") // never reads after the handshake
	_ = stalled.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	stalledRec := <-s.conns
	conns := []Conn{stalledRec.conn}
	lat := make(chan time.Duration, healthy*messages)
	var wg sync.WaitGroup
	for i := 0; i < healthy; i++ {
		c, _ := dialRaw(t, s.URL, "")
		conns = append(conns, (<-s.conns).conn)
		wg.Add(1)
		go func() { defer wg.Done(); drainClient(t, c.nc, c.br, messages, lat) }()
	}

	var slowErrs int
	for i := 0; i < messages; i++ {
		p := make([]byte, size)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		m := Binary(p)
		for _, c := range conns {
			if err := c.Send(m); errors.Is(err, ErrSlowConsumer) {
				slowErrs++
			}
		}
		if i%4 == 0 {
			time.Sleep(time.Millisecond) // a paced publisher (<16 MB/s), not one burst
		}
	}
	wg.Wait()
	close(lat)
	var worst time.Duration
	n := 0
	for d := range lat {
		n++
		worst = max(worst, d)
	}
	if n != healthy*messages {
		t.Fatalf("healthy readers got %d deliveries, want %d", n, healthy*messages)
	}
	if slowErrs != 1 {
		t.Fatalf("ErrSlowConsumer returned %d times, want once", slowErrs)
	}
	select {
	case info := <-stalledRec.closed:
		if !errors.Is(info.Err, ErrSlowConsumer) || info.Code != 4100 {
			t.Fatalf("stalled CloseInfo %+v", info)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stalled reader was never disconnected")
	}
	_ = stalled
	t.Logf("worst healthy latency %v (informational)", worst)
}

// BenchmarkFanout measures the transport's share of a broadcast: one
// pre-encoded 100-byte message queued to every connection and flushed to
// real loopback sockets drained by clients. "batched" lets 64 broadcasts
// pile up before waiting, so each writev carries many frames (a busy
// channel); "unbatched" waits for every broadcast to reach the sockets, so
// each delivery is its own syscall (a quiet channel, the latency case),
// written inline by the sending goroutine. "batched" messages are marked
// Queue, as the hub marks a busy channel's for subscribers that take them
// one by one (internal/hub/fanout.go); "unbatched-queued" is the quiet
// case through the writer goroutine, for comparison with inline writes.
// BenchmarkLoopbackWriteFloor is the same setup with the transport taken
// out: one write syscall per recipient from one goroutine.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{100, 1000} {
		for _, mode := range []struct {
			name  string
			every int
			queue bool
		}{{"batched", 64, true}, {"unbatched", 1, false}, {"unbatched-queued", 1, true}} {
			b.Run(itoa(subs)+"subs/"+mode.name, func(b *testing.B) { benchFanout(b, subs, mode.every, mode.queue) })
		}
	}
}

func BenchmarkLoopbackWriteFloor(b *testing.B) {
	for _, subs := range []int{100, 1000} {
		b.Run(itoa(subs)+"subs", func(b *testing.B) { benchWriteFloor(b, subs, false, 0) })
	}
	// The readers in another process on the generator's CPU (floor_test.go):
	// the floor as a server sees it. Paced: one round every 100 ms, as a
	// fan-out at 10 publishes/s, so that every write wakes an idle reader.
	b.Run("1000subs-remote", func(b *testing.B) { benchWriteFloor(b, 1000, true, 0) })
	b.Run("1000subs-remote-paced", func(b *testing.B) { benchWriteFloor(b, 1000, true, 100*time.Millisecond) })
	// fanout-2k-1ch's slow steps at their own pace: 2,000 readers, one
	// round per second (1 publish/s) or per 100 ms (10/s). bench/run.sh
	// runs these apart, with fewer rounds (a round at 1/s takes a second).
	for _, p := range []struct {
		name string
		pace time.Duration
	}{{"1s", time.Second}, {"100ms", 100 * time.Millisecond}} {
		b.Run("2000subs-remote-every-"+p.name, func(b *testing.B) { benchWriteFloor(b, 2000, true, p.pace) })
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// benchClients dials subs WebSocket clients that read and discard until
// their socket closes, and returns the server's side of each.
func benchClients(b *testing.B, subs int) (targets []Conn, stop func()) {
	// With a Poller, as the server runs on Linux: idle readers park and
	// quiet connections are written inline (inline.go).
	p, err := NewPoller()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	up := &Upgrader{Options: Options{SendQueueBytes: 64 << 20}, Poller: p}
	conns := make(chan Conn, subs)
	srv := newBenchServer(b, up, conns)
	var wg sync.WaitGroup
	clients := make([]net.Conn, 0, subs)
	for i := 0; i < subs; i++ {
		nc, br := benchDial(b, srv)
		clients = append(clients, nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				if _, err := br.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	for i := 0; i < subs; i++ {
		targets = append(targets, <-conns)
	}
	return targets, func() {
		for _, nc := range clients {
			_ = nc.Close()
		}
		wg.Wait()
	}
}

func benchFanout(b *testing.B, subs, drainEvery int, queue bool) {
	targets, stop := benchClients(b, subs)
	defer stop()
	payload := make([]byte, 100)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := Text(payload)
		if queue {
			m.Queue()
		}
		for _, c := range targets {
			_ = c.Send(m)
		}
		if i%drainEvery == drainEvery-1 {
			waitDrained(targets)
		}
	}
	waitDrained(targets)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	deliveries := float64(b.N) * float64(subs)
	b.ReportMetric(float64(processCPU(b)-cpu0)/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
}

// benchWriteFloor writes one pre-framed 100-byte text frame to each
// recipient's socket in turn, straight through net.Conn.Write: the cost of
// the syscall and the kernel's loopback path, which no transport can beat.
// benchWriteFloor writes one frame to each of subs sockets in turn per
// round, with pace between rounds; remote puts the readers in another
// process (remoteReaders). It reports the process's CPU per delivery, the
// readers' included when they are in it.
func benchWriteFloor(b *testing.B, subs int, remote bool, pace time.Duration) {
	var socks []net.Conn
	if remote {
		cpus := os.Getenv(floorReadersEnv)
		if cpus == "" {
			b.Skip("set " + floorReadersEnv + " to the readers' CPUs (bench/run.sh does)")
		}
		socks = remoteReaders(b, subs, cpus)
	} else {
		targets, stop := benchClients(b, subs)
		defer stop()
		socks = make([]net.Conn, len(targets))
		for i, c := range targets {
			socks[i] = c.(*wsConn).out.nc
		}
	}
	frame := append([]byte{0x81, 100}, make([]byte, 100)...)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pace > 0 && i > 0 {
			b.StopTimer()
			time.Sleep(pace)
			b.StartTimer()
		}
		for _, nc := range socks {
			if _, err := nc.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	deliveries := float64(b.N) * float64(subs)
	b.ReportMetric(float64(processCPU(b)-cpu0)/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
}

func waitDrained(cs []Conn) {
	for _, c := range cs {
		for c.QueuedBytes() > 0 {
			runtime.Gosched()
		}
	}
}

func newBenchServer(b *testing.B, up *Upgrader, conns chan<- Conn) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = up.Upgrade(w, r, nil, func(c Conn) Handler {
			conns <- c
			return &recorder{conn: c, closed: make(chan CloseInfo, 1)}
		})
	})}
	go func() { _ = srv.Serve(ln) }() // http.ErrServerClosed once Cleanup closes it
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func benchDial(b *testing.B, addr string) (net.Conn, *bufio.Reader) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(nc)
	if _, err := http.ReadResponse(br, nil); err != nil {
		b.Fatal(err)
	}
	return nc, br
}
