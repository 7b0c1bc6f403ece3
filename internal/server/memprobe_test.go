package server_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMemoryPerIdleConnection is a measurement, not a test of behaviour: it
// opens N real Pusher connections over loopback to a real server (default
// configuration), subscribes each to one of 100 public channels, and reports
// the live heap the server holds per connection, broken down by allocation
// site. It only runs when asked:
//
//	SWITCHBOARD_MEMPROBE=9000 go test -count=1 -run TestMemoryPerIdleConnection -v ./internal/server/
//
// SWITCHBOARD_MEMPROBE_PROFILE=/tmp/heap.pb.gz also writes the heap profile
// (every allocation sampled), for
//
//	go tool pprof -sample_index=inuse_space -ignore 'memprobe' -top /tmp/heap.pb.gz
//
// Clients and server share the process (and its descriptor limit: N <= 9,000
// under a 20,000 limit), so the server's part is taken from the profile:
// every allocation whose stack does not pass through this file's client code.
// RSS per connection at 10,000 and 19,000 comes from bench/run.sh, which
// runs the server alone; see docs/performance.md.
func TestMemoryPerIdleConnection(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SWITCHBOARD_MEMPROBE"))
	if n <= 0 {
		t.Skip("set SWITCHBOARD_MEMPROBE=<connections> to measure memory per idle connection")
	}
	runtime.MemProfileRate = 1
	addr, _ := startServer(t, "limits: {connection_rate: {per_second: 0}}\n")

	settle := func() runtime.MemStats {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms
	}
	before := settle()
	baseSites := serverSites()

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	next := make(chan int)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := memprobeDial(addr, "memprobe-"+strconv.Itoa(i%100))
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	storm := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	// Let every reader park (ParkAfter plus a wheel tick).
	time.Sleep(3 * time.Second)
	after := settle()
	sites := serverSites()

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	var total int64
	for k, v := range sites {
		v -= baseSites[k]
		sites[k] = v
		total += v
	}
	t.Logf("%d connections connected and subscribed in %v", n, storm)
	t.Logf("server live heap per connection (profile): %.0f B", float64(total)/float64(n))
	t.Logf("process (server + clients) per connection: HeapInuse %+.0f B, HeapAlloc %+.0f B, StackInuse %+.0f B, Sys %+.0f B, goroutines %d -> %d",
		per(after.HeapInuse, before.HeapInuse), per(after.HeapAlloc, before.HeapAlloc),
		per(after.StackInuse, before.StackInuse), per(after.Sys, before.Sys), before.NumGC, after.NumGC)
	type site struct {
		name  string
		bytes int64
	}
	var list []site
	for k, v := range sites {
		if v > int64(n)/2 {
			list = append(list, site{k, v})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].bytes > list[j].bytes })
	for _, s := range list[:min(len(list), 25)] {
		t.Logf("%7.1f B/conn  %s", float64(s.bytes)/float64(n), s.name)
	}
	if path := os.Getenv("SWITCHBOARD_MEMPROBE_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// serverSites sums the live heap by allocation site (the first frame in
// our module or, failing that, the first frame outside the runtime),
// leaving out the clients of this file.
func serverSites() map[string]int64 {
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+100)
	}
	sites := map[string]int64{}
	for _, r := range recs {
		if r.InUseBytes() == 0 {
			continue
		}
		frames := runtime.CallersFrames(r.Stack())
		var name, fallback string
		client := false
		for {
			f, more := frames.Next()
			if strings.Contains(f.File, "memprobe_test.go") {
				client = true
				break
			}
			if fallback == "" && !strings.HasPrefix(f.Function, "runtime.") {
				fallback = fmt.Sprintf("%s (%s:%d)", f.Function, shortFile(f.File), f.Line)
			}
			if name == "" && strings.Contains(f.Function, "switchboard-rt/switchboard/") {
				name = fmt.Sprintf("%s (%s:%d)", strings.TrimPrefix(f.Function, "github.com/switchboard-rt/switchboard/internal/"), shortFile(f.File), f.Line)
				if fallback != name {
					name = fallback + " <- " + name
				}
			}
			if !more {
				break
			}
		}
		if client {
			continue
		}
		if name == "" {
			name = fallback
		}
		sites[name] += r.InUseBytes()
	}
	return sites
}

func shortFile(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		if j := strings.LastIndex(p[:i], "/"); j >= 0 {
			return p[j+1:]
		}
	}
	return p
}

// memprobeDial opens one Pusher connection with a hand-written handshake
// (so the client side allocates little) and subscribes it to channel.
func memprobeDial(addr, channel string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := readUntil(c, "connection_established"); err != nil {
		_ = c.Close()
		return nil, err
	}
	sub := []byte(`{"event":"pusher:subscribe","data":{"channel":"` + channel + `"}}`)
	frame := append([]byte{0x81, 0x80 | byte(len(sub)), 0, 0, 0, 0}, sub...) // zero mask
	if _, err := c.Write(frame); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := readUntil(c, "subscription_succeeded"); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func readUntil(c net.Conn, marker string) error {
	var buf [1024]byte
	var seen []byte
	for !bytes.Contains(seen, []byte(marker)) {
		n, err := c.Read(buf[:])
		if err != nil {
			return fmt.Errorf("waiting for %s: %w (got %q)", marker, err, seen)
		}
		seen = append(seen, buf[:n]...)
	}
	return nil
}
