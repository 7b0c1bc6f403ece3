// Command wsbench-client drives wsbench-server and measures it from outside:
//
//	-mode idle:   server RSS before and after -conns idle connections
//	-mode fanout: deliveries/s and server CPU per delivery while the server
//	              broadcasts -msgs messages to -conns subscribers, -rounds times
//
// It uses gobwas/ws for the client handshake and parses server frames itself
// from a bufio.Reader (server frames are unmasked, so this is a few lines and
// keeps the client cheap enough not to be the bottleneck). Source addresses
// are spread over 127.0.0.2..127.0.0.50 so 10k+ connections never run out of
// ephemeral ports towards the single server port.
//
// Every wait is bounded (-timeout for the whole run) and only loopback
// addresses are accepted.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

var (
	wsURL    = flag.String("ws", "ws://127.0.0.1:9000/", "server WebSocket URL (loopback only)")
	ctlURL   = flag.String("ctl", "http://127.0.0.1:9001", "server control URL (loopback only)")
	mode     = flag.String("mode", "idle", "idle|fanout")
	nConns   = flag.Int("conns", 10000, "connections to open")
	nMsgs    = flag.Int("msgs", 500, "fanout: messages per round")
	msgSize  = flag.Int("size", 100, "fanout: payload bytes per message")
	rounds   = flag.Int("rounds", 3, "fanout: measured rounds (after one warm-up round)")
	settle   = flag.Duration("settle", 2*time.Second, "idle: pause before reading RSS")
	timeout  = flag.Duration("timeout", 180*time.Second, "hard limit for the whole run")
	workers  = flag.Int("dial-workers", 64, "concurrent dials")
	srcFirst = flag.Int("src-first", 2, "first source address 127.0.0.N")
	srcLast  = flag.Int("src-last", 50, "last source address 127.0.0.N")
)

// warmupMsgs is the size of the unmeasured first fan-out round: it lets
// goroutine stacks, pools and socket buffers reach steady state.
const warmupMsgs = 50

var ctl = &http.Client{Timeout: 10 * time.Second}

func main() {
	flag.Parse()
	log.SetFlags(0)
	for _, u := range []string{*wsURL, *ctlURL} {
		if err := requireLoopback(u); err != nil {
			log.Fatal(err)
		}
	}
	if *srcFirst < 1 || *srcLast > 254 || *srcFirst > *srcLast {
		log.Fatal("bad -src-first/-src-last")
	}
	need := uint64(*nConns) + 64
	if lim := raiseNoFile(); lim < need {
		log.Fatalf("RLIMIT_NOFILE %d is below the %d this run needs", lim, need)
	}
	// The watchdog makes the process stop by itself whatever hangs.
	time.AfterFunc(*timeout, func() {
		fmt.Fprintln(os.Stderr, "wsbench-client: -timeout reached, giving up")
		os.Exit(2)
	})

	st := waitServer()
	switch *mode {
	case "idle":
		runIdle(st)
	case "fanout":
		runFanout(st)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback IP addresses are allowed", raw)
	}
	return nil
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the resulting soft limit.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// ---- server control and /proc ----

type stats struct {
	Lib        string `json:"lib"`
	Pid        int    `json:"pid"`
	Conns      int    `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	GoMaxProcs int    `json:"gomaxprocs"`
}

func getStats() (stats, error) {
	var s stats
	resp, err := ctl.Get(*ctlURL + "/stats")
	if err != nil {
		return s, err
	}
	defer func() { _ = resp.Body.Close() }() // decoded below; closing cannot change the stats
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

func post(path string) {
	resp, err := ctl.Post(*ctlURL+path, "text/plain", nil)
	if err != nil {
		log.Fatalf("POST %s: %v", path, err)
	}
	_ = resp.Body.Close() // the status is the answer
	if resp.StatusCode >= 300 {
		log.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// waitServer polls /stats until the server answers (at most 10 s).
func waitServer() stats {
	for i := 0; i < 100; i++ {
		if s, err := getStats(); err == nil {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatal("server control endpoint did not come up")
	return stats{}
}

// waitConns polls until the server reports exactly n subscribers (≤ 30 s).
func waitConns(n int) stats {
	var s stats
	var err error
	for i := 0; i < 300; i++ {
		if s, err = getStats(); err == nil && s.Conns == n {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatalf("server has %d subscribers, want %d (last error %v)", s.Conns, n, err)
	return s
}

// rssBytes reads VmRSS of pid.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	log.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// cpuTime is utime+stime of pid from /proc/<pid>/stat. The fields count
// USER_HZ ticks, which is 100 on Linux for every architecture we run on.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// comm (field 2) may contain spaces; fields after the last ')' start
	// at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ---- connections ----

// shared is the state the reader goroutines report into.
type shared struct {
	target   atomic.Int64 // messages each conn must have received this round
	lastNano atomic.Int64 // latest time a conn reached target
	wg       sync.WaitGroup
	badSeq   atomic.Int64 // out-of-order, duplicate or lost messages
	badFrame atomic.Int64 // unexpected frames
	closing  atomic.Bool  // we are closing: read errors are expected
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
}

// dialAll opens n connections with bounded concurrency and bounded retries.
func dialAll(n int) []*conn {
	conns := make([]*conn, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	span := *srcLast - *srcFirst + 1
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				src := net.IPv4(127, 0, 0, byte(*srcFirst+i%span))
				d := ws.Dialer{
					Timeout: 10 * time.Second,
					NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
						nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
						return nd.DialContext(ctx, network, addr)
					},
				}
				var err error
				for try := 0; try < 3; try++ {
					var nc net.Conn
					var br *bufio.Reader
					if nc, br, _, err = d.Dial(context.Background(), *wsURL); err == nil {
						if br == nil {
							br = bufio.NewReaderSize(nc, 4096)
						}
						conns[i] = &conn{nc: nc, br: br}
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil && failed.Add(1) == 1 {
					log.Printf("dial %d from %v: %v", i, src, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		idx <- i
	}
	close(idx)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		log.Fatalf("%d of %d dials failed", f, n)
	}
	return conns
}

// readLoop counts text frames and checks their sequence numbers. Server
// frames are unmasked, so header parsing is a few Peeks on the buffer.
func (c *conn) readLoop(sh *shared) {
	var got, lastSeq int64 = 0, -1
	for {
		h, err := c.br.Peek(2)
		if err != nil {
			if !sh.closing.Load() {
				sh.badFrame.Add(1)
			}
			return
		}
		op, fin, masked := h[0]&0x0f, h[0]&0x80 != 0, h[1]&0x80 != 0
		hl, n := 2, int(h[1]&0x7f)
		switch n {
		case 126:
			if h, err = c.br.Peek(4); err == nil {
				hl, n = 4, int(binary.BigEndian.Uint16(h[2:4]))
			}
		case 127:
			if h, err = c.br.Peek(10); err == nil {
				hl, n = 10, int(binary.BigEndian.Uint64(h[2:10]))
			}
		}
		if err != nil || masked || op != byte(ws.OpText) || !fin {
			if !sh.closing.Load() {
				sh.badFrame.Add(1)
			}
			return
		}
		if hl+n <= c.br.Size() && n >= 8 {
			p, _ := c.br.Peek(hl + n)
			seq, perr := strconv.ParseInt(string(p[hl:hl+8]), 10, 64)
			if perr != nil || (lastSeq >= 0 && seq != lastSeq+1) {
				sh.badSeq.Add(1)
			}
			lastSeq = seq
		}
		if _, err := c.br.Discard(hl + n); err != nil {
			return
		}
		got++
		switch t := sh.target.Load(); {
		case got == t:
			now := time.Now().UnixNano()
			for {
				old := sh.lastNano.Load()
				if now <= old || sh.lastNano.CompareAndSwap(old, now) {
					break
				}
			}
			sh.wg.Done()
		case got > t:
			sh.badSeq.Add(1)
		}
	}
}

func closeAll(sh *shared, conns []*conn) {
	sh.closing.Store(true)
	for _, c := range conns {
		_ = c.nc.Close()
	}
}

// ---- modes ----

func runIdle(st0 stats) {
	pid := st0.Pid
	post("/gc")
	time.Sleep(*settle)
	rss0 := rssBytes(pid)

	sh := &shared{}
	conns := dialAll(*nConns)
	for _, c := range conns {
		go c.readLoop(sh)
	}
	waitConns(*nConns)
	time.Sleep(*settle)
	rssSettled := rssBytes(pid)
	post("/gc")
	time.Sleep(500 * time.Millisecond)
	rssGC := rssBytes(pid)
	st := waitConns(*nConns)
	closeAll(sh, conns)

	n := int64(*nConns)
	fmt.Printf("RESULT mode=idle lib=%s conns=%d rss_base=%d rss_settled=%d rss_gc=%d "+
		"per_conn_settled=%d per_conn_gc=%d goroutines=%d heap_inuse=%d stack_inuse=%d\n",
		st.Lib, n, rss0, rssSettled, rssGC, (rssSettled-rss0)/n, (rssGC-rss0)/n,
		st.Goroutines, st.HeapInuse, st.StackInuse)
}

func runFanout(st0 stats) {
	pid := st0.Pid
	sh := &shared{}
	conns := dialAll(*nConns)
	for _, c := range conns {
		go c.readLoop(sh)
	}
	st := waitConns(*nConns)
	time.Sleep(500 * time.Millisecond)

	var rates, cpus []float64
	var cum int64
	for r := 0; r <= *rounds; r++ {
		msgs := *nMsgs
		if r == 0 {
			msgs = warmupMsgs
		}
		cum += int64(msgs)
		sh.wg.Add(*nConns)
		sh.lastNano.Store(0)
		sh.target.Store(cum)

		cpu0, self0 := cpuTime(pid), selfCPU()
		t0 := time.Now()
		post(fmt.Sprintf("/broadcast?n=%d&size=%d", msgs, *msgSize))
		done := make(chan struct{})
		go func() { sh.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			log.Fatalf("round %d: not all deliveries arrived within 60 s", r)
		}
		elapsed := time.Unix(0, sh.lastNano.Load()).Sub(t0)
		cpu, self := cpuTime(pid)-cpu0, selfCPU()-self0
		if bs, bf := sh.badSeq.Load(), sh.badFrame.Load(); bs+bf > 0 {
			log.Fatalf("round %d: %d sequence errors, %d bad frames", r, bs, bf)
		}
		deliveries := float64(*nConns) * float64(msgs)
		rate := deliveries / elapsed.Seconds()
		cpuUs := float64(cpu.Microseconds()) / deliveries
		fmt.Printf("round %d: %d deliveries in %v: %.0f/s, server CPU %v (%.3f µs/delivery), client CPU %v\n",
			r, int64(deliveries), elapsed.Round(time.Millisecond), rate, cpu, cpuUs, self)
		if r > 0 {
			rates = append(rates, rate)
			cpus = append(cpus, cpuUs)
		}
	}
	closeAll(sh, conns)
	fmt.Printf("RESULT mode=fanout lib=%s conns=%d msgs=%d size=%d rounds=%d "+
		"deliveries_per_s=%.0f cpu_us_per_delivery=%.3f gomaxprocs=%d\n",
		st.Lib, *nConns, *nMsgs, *msgSize, *rounds, median(rates), median(cpus), st.GoMaxProcs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
