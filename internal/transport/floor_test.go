package transport

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The write floor with its readers where a server's are: in another
// process, on another CPU (the load generator's). Readers in the
// benchmark's own process share its CPU, so a write that wakes one only
// marks it runnable there; a reader on another CPU is woken across CPUs,
// which the writer pays for. bench/run.sh sets floorReadersEnv to the
// generator's CPU list; without it these sub-benchmarks are skipped.
const (
	floorReadersEnv    = "SWITCHBOARD_FLOOR_READERS_CPUS"
	floorReaderAddrEnv = "SWITCHBOARD_FLOOR_READER_ADDR"
	floorReaderNEnv    = "SWITCHBOARD_FLOOR_READER_CONNS"
)

// TestFloorReaderProcess is the child process of remoteReaders: it dials
// the benchmark's listener and reads and discards until each socket
// closes.
func TestFloorReaderProcess(t *testing.T) {
	addr := os.Getenv(floorReaderAddrEnv)
	if addr == "" {
		t.Skip("runs only as the reader process of BenchmarkLoopbackWriteFloor's remote sub-benchmarks")
	}
	n, err := strconv.Atoi(os.Getenv(floorReaderNEnv))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				if _, err := nc.Read(buf); err != nil {
					_ = nc.Close()
					return
				}
			}
		}()
	}
	wg.Wait()
}

// remoteReaders starts n readers in a child process pinned to cpus
// (taskset's list) and returns this side's sockets, one per reader.
func remoteReaders(b *testing.B, n int, cpus string) []net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	cmd := exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run", "^TestFloorReaderProcess$")
	cmd.Env = append(os.Environ(), floorReaderAddrEnv+"="+ln.Addr().String(), floorReaderNEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Skipf("no reader process (%v): taskset is needed", err)
	}
	socks := make([]net.Conn, 0, n)
	b.Cleanup(func() {
		for _, nc := range socks {
			_ = nc.Close()
		}
		_ = cmd.Wait()
	})
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	for range n {
		nc, err := ln.Accept()
		if err != nil {
			_ = cmd.Process.Kill()
			b.Fatalf("reader process: %v", err)
		}
		_ = nc.(*net.TCPConn).SetNoDelay(true)
		socks = append(socks, nc)
	}
	return socks
}
