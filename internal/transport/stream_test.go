package transport

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// streamRecorder collects what a stream connection receives.
type streamRecorder struct {
	conn   Conn
	mu     sync.Mutex
	got    bytes.Buffer
	closed chan CloseInfo
}

func (r *streamRecorder) HandleMessage(p []byte, _ bool) {
	r.mu.Lock()
	r.got.Write(p)
	r.mu.Unlock()
}
func (r *streamRecorder) HandleClose(info CloseInfo) { r.closed <- info }

func (r *streamRecorder) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got.Bytes())
}

// newStreamServer serves s on a loopback listener and returns its address
// and the recorders of the connections it accepts.
func newStreamServer(t *testing.T, s *StreamServer) (string, chan *streamRecorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recs := make(chan *streamRecorder, 256)
	go func() {
		_ = s.Serve(ln, func(c Conn) Handler {
			r := &streamRecorder{conn: c, closed: make(chan CloseInfo, 1)}
			recs <- r
			return r
		})
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), recs
}

// TestStreamReadsEveryByteThenSeesTheClose: bytes written in chunks of
// every size, some larger than the read buffer, all reach the handler in
// order; the peer's close ends the connection with no error.
func TestStreamReadsEveryByteThenSeesTheClose(t *testing.T) {
	addr, recs := newStreamServer(t, &StreamServer{ReadBufferBytes: 1024})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := <-recs
	want := make([]byte, 200<<10)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range want {
		want[i] = byte(rng.IntN(256))
	}
	for rest := want; len(rest) > 0; {
		k := min(len(rest), 1+rng.IntN(3000))
		if _, err := nc.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
		if rng.IntN(8) == 0 {
			time.Sleep(time.Millisecond) // let the reader wait for bytes again
		}
	}
	waitFor(t, "every byte", func() bool { return len(rec.received()) == len(want) })
	if !bytes.Equal(rec.received(), want) {
		t.Fatal("the bytes received differ from the bytes sent")
	}
	_ = nc.Close()
	select {
	case info := <-rec.closed:
		if info.Err != nil || info.ByServer {
			t.Fatalf("close after the peer's: %+v, want no error, not by the server", info)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no HandleClose after the peer closed")
	}
}

// TestStreamIdleConnectionsHoldNoReadBuffer: 100 connections that each
// sent a message and went quiet hold no read buffer: with 64 KiB buffers,
// one each would be 6.4 MiB of live heap.
func TestStreamIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	const n, size = 100, 64 << 10
	addr, recs := newStreamServer(t, &StreamServer{ReadBufferBytes: size})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		if _, err := nc.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		rec := <-recs
		waitFor(t, "the message", func() bool { return len(rec.received()) == 5 })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > n*size/4 {
		t.Fatalf("live heap grew %d KiB for %d idle connections (a %d KiB buffer each would be %d KiB)",
			grew>>10, n, size>>10, n*size>>10)
	}
}

// TestStreamReadDeadlineEndsTheConnection: a read deadline set by the
// protocol (an identify timeout) still ends a reader that waits for
// bytes without a buffer.
func TestStreamReadDeadlineEndsTheConnection(t *testing.T) {
	addr, recs := newStreamServer(t, &StreamServer{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	rec := <-recs
	_ = rec.conn.(*streamConn).nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	select {
	case info := <-rec.closed:
		if !errors.Is(info.Err, os.ErrDeadlineExceeded) {
			t.Fatalf("close cause %v, want the deadline", info.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read deadline did not end the connection")
	}
}
