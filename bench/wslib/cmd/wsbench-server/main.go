// Command wsbench-server is the server side of the WebSocket library
// comparison (see docs/websocket-library.md in the main repository).
//
// It serves WebSocket connections with one library per process (-lib) so that
// RSS and CPU time read from /proc belong to that library alone. Every
// connection is subscribed to a single broadcast group on connect. A separate
// plain-HTTP control listener (-ctl) lets the driver read stats, force a GC
// and trigger broadcasts; it is kept off the WebSocket listener so that the
// libraries that own their accept loop (gws, gobwas) need no net/http at all.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// server is what every library mode implements.
type server interface {
	// serve runs the accept loop until ln is closed.
	serve(ln net.Listener) error
	// count is the number of currently subscribed connections.
	count() int
	// broadcast delivers every message, in order, to every connection that
	// is subscribed when it is called. It may return before the bytes are on
	// the wire (queued designs); the driver measures receipt, not return.
	broadcast(msgs [][]byte)
}

var modes = map[string]func() server{
	"gws":             newGWS,
	"gorilla":         newGorilla,
	"gobwas":          newGobwas,
	"coder":           newCoder,
	"gobwas-prebuilt": newPrebuilt,
	// Diagnostic only, see newPrebuiltNoBatch.
	"gobwas-prebuilt-nobatch": newPrebuiltNoBatch,
}

// Upper bounds for one /broadcast request, so a typo cannot make the server
// spin for minutes.
const (
	maxBroadcastMsgs = 100_000
	maxMsgSize       = 64 << 10
)

func main() {
	lib := flag.String("lib", "gws", "library mode: gws|gorilla|gobwas|coder|gobwas-prebuilt|gobwas-prebuilt-nobatch")
	addr := flag.String("addr", "127.0.0.1:9000", "WebSocket listen address (loopback only)")
	ctl := flag.String("ctl", "127.0.0.1:9001", "control HTTP listen address (loopback only)")
	flag.Parse()

	mk, ok := modes[*lib]
	if !ok {
		log.Fatalf("unknown -lib %q", *lib)
	}
	for _, a := range []string{*addr, *ctl} {
		if err := requireLoopback(a); err != nil {
			log.Fatal(err)
		}
	}
	raiseNoFile()

	srv := mk()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	cln, err := net.Listen("tcp", *ctl)
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(http.Serve(cln, controlMux(*lib, srv))) }()
	log.Printf("wsbench-server lib=%s ws=%s ctl=%s pid=%d GOMAXPROCS=%d",
		*lib, *addr, *ctl, os.Getpid(), runtime.GOMAXPROCS(0))
	if err := srv.serve(ln); err != nil {
		log.Fatal(err)
	}
}

// requireLoopback refuses anything but a loopback listen address: this
// harness must never be reachable from outside the machine.
func requireLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback addresses are allowed", hostport)
	}
	return nil
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit. Go already does
// this at start-up on Linux; doing it explicitly documents the dependency.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
}

// broadcastSeq numbers messages across requests so that the driver can check
// that each connection sees every message exactly once and in order.
var broadcastSeq atomic.Uint64

// makeMessages builds n text payloads of exactly size bytes, each starting
// with an 8-digit sequence number followed by filler.
func makeMessages(n, size int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		p := make([]byte, size)
		for j := range p {
			p[j] = 'x'
		}
		copy(p, fmt.Sprintf("%08d ", broadcastSeq.Add(1)%100_000_000))
		msgs[i] = p
	}
	return msgs
}

func controlMux(lib string, srv server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"lib":         lib,
			"pid":         os.Getpid(),
			"conns":       srv.count(),
			"goroutines":  runtime.NumGoroutine(),
			"heap_inuse":  ms.HeapInuse,
			"stack_inuse": ms.StackInuse,
			"sys":         ms.Sys,
			"gomaxprocs":  runtime.GOMAXPROCS(0),
		})
	})
	// /gc returns memory the runtime holds but does not use, so that RSS
	// reflects live per-connection state rather than GC timing.
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		w.WriteHeader(http.StatusNoContent)
	})
	var busy sync.Mutex
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		n, err1 := strconv.Atoi(r.URL.Query().Get("n"))
		size, err2 := strconv.Atoi(r.URL.Query().Get("size"))
		if err := errors.Join(err1, err2); err != nil || n < 1 || n > maxBroadcastMsgs || size < 9 || size > maxMsgSize {
			http.Error(w, "need 1<=n<=100000 and 9<=size<=65536", http.StatusBadRequest)
			return
		}
		if !busy.TryLock() {
			http.Error(w, "broadcast already running", http.StatusConflict)
			return
		}
		// Payloads are built before the response so that their cost is not
		// part of the measured window in any mode.
		msgs := makeMessages(n, size)
		w.WriteHeader(http.StatusAccepted)
		go func() {
			defer busy.Unlock()
			start := time.Now()
			srv.broadcast(msgs)
			log.Printf("broadcast of %d x %dB returned after %v", n, size, time.Since(start))
		}()
	})
	return mux
}

// hub is the broadcast group: a set of subscribed connections. Broadcasts
// take a snapshot so that the lock is not held while writing.
type hub[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
}

func newHub[T comparable]() *hub[T] { return &hub[T]{m: make(map[T]struct{})} }

func (h *hub[T]) add(c T) {
	h.mu.Lock()
	h.m[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub[T]) remove(c T) {
	h.mu.Lock()
	delete(h.m, c)
	h.mu.Unlock()
}

func (h *hub[T]) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

func (h *hub[T]) snapshot() []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := make([]T, 0, len(h.m))
	for c := range h.m {
		s = append(s, c)
	}
	return s
}

// acceptLoop is shared by the modes that own their listener. Temporary
// errors (EMFILE during a connect storm) are retried after a pause instead of
// spinning.
func acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go handle(c)
	}
}
