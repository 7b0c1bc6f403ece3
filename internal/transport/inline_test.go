package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/wstest"
)

// numbered is a text message carrying sender and sequence number, padded
// to size bytes.
func numbered(sender, seq, size int) *Message {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(sender))
	binary.BigEndian.PutUint32(p[4:], uint32(seq))
	return Text(p)
}

// smallBufferConn is a connection (with inline writes, and a send queue
// bound out of the way) whose socket buffers are small both ways, so that
// its socket is full after a few frames and inline writes are cut short.
func smallBufferConn(t *testing.T) (*rawClient, *recorder) {
	t.Helper()
	s := newWSServer(t, &Upgrader{Poller: newTestPoller(t), Options: Options{SendQueueBytes: 64 << 20}}, false)
	c, _ := dialRaw(t, s.URL, "")
	rec := <-s.conns
	_ = rec.conn.(*wsConn).out.nc.(*net.TCPConn).SetWriteBuffer(32 << 10)
	_ = c.nc.(*net.TCPConn).SetReadBuffer(32 << 10)
	return c, rec
}

func frameSize(seq int) int {
	if seq%50 == 25 {
		return inlineMaxBytes + 100
	}
	return 8 + (seq*37)%(inlineMaxBytes-16)
}

// TestInlineWritesKeepEachSendersOrder: several goroutines send at once to
// one connection whose reader is slow to start, so inline writes, partial
// writes (the socket fills up) and the writer goroutine all take turns.
// Every frame must arrive whole, once, and in each sender's order.
func TestInlineWritesKeepEachSendersOrder(t *testing.T) {
	c, rec := smallBufferConn(t)
	const senders, each = 4, 300
	var wg sync.WaitGroup
	for id := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range each {
				// Sizes up to inlineMaxBytes and a few past it (never
				// written inline), and a few frames marked Queue.
				m := numbered(id, seq, frameSize(seq))
				if seq%50 == 49 {
					m.Queue()
				}
				if err := rec.conn.Send(m); err != nil {
					t.Errorf("send %d/%d: %v", id, seq, err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the socket buffers fill first
	readEachSendersOrder(t, c, rec, senders, each)
	wg.Wait()
	waitFor(t, "the send queue to empty", func() bool { return rec.conn.QueuedBytes() == 0 })
}

// readEachSendersOrder reads senders*each numbered frames (sized by
// frameSize) and fails unless each arrives whole, once, in its sender's
// order.
func readEachSendersOrder(t *testing.T, c *rawClient, rec *recorder, senders, each int) {
	t.Helper()
	next := make([]int, senders)
	for got := 0; got < senders*each; got++ {
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := wstest.ReadFrame(c.br, wstest.MaxFrame)
		if err != nil {
			select {
			case info := <-rec.closed:
				t.Fatalf("after %d frames: %v; the server closed: %+v", got, err, info)
			default:
				t.Fatalf("after %d frames: %v", got, err)
			}
		}
		id, seq := int(binary.BigEndian.Uint32(f.Payload)), int(binary.BigEndian.Uint32(f.Payload[4:]))
		if id >= senders || seq != next[id] {
			t.Fatalf("sender %d: got frame %d, want %d", id, seq, next[id])
		}
		if want := frameSize(seq); len(f.Payload) != want {
			t.Fatalf("frame %d of sender %d: %d bytes, want %d", seq, id, len(f.Payload), want)
		}
		next[id]++
	}
}

// TestInlineWriteCutShortByAFullSocket: frames written inline to a client
// that does not read, until the socket is full and one write is cut short
// (the rest goes to the writer goroutine, which waits for room), then more
// behind it. Once the client reads, every frame arrives whole and in order.
func TestInlineWriteCutShortByAFullSocket(t *testing.T) {
	c, rec := smallBufferConn(t)
	sent := 0
	for ; rec.conn.QueuedBytes() == 0; sent++ {
		if sent == 10000 {
			t.Fatal("10,000 frames and the socket never filled")
		}
		if err := rec.conn.Send(numbered(0, sent, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for end := sent + 100; sent < end; sent++ {
		if err := rec.conn.Send(numbered(0, sent, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for seq := range sent {
		f := c.readFrame()
		if got := int(binary.BigEndian.Uint32(f.Payload[4:])); got != seq || len(f.Payload) != 1000 {
			t.Fatalf("frame %d: got number %d, %d bytes", seq, got, len(f.Payload))
		}
	}
}

// TestInlineWriteAfterAnExpiredWriteDeadline: the writer goroutine leaves
// its last batch's deadline on the socket; a quiet connection's next
// inline write, after that deadline passed, must still go out.
func TestInlineWriteAfterAnExpiredWriteDeadline(t *testing.T) {
	s := newWSServer(t, &Upgrader{Poller: newTestPoller(t), Options: Options{WriteTimeout: 20 * time.Millisecond}}, false)
	c, _ := dialRaw(t, s.URL, "")
	rec := <-s.conns
	first := Text([]byte("through the writer"))
	first.Queue()
	if err := rec.conn.Send(first); err != nil {
		t.Fatal(err)
	}
	if f := c.readFrame(); string(f.Payload) != "through the writer" {
		t.Fatalf("got %q", f.Payload)
	}
	time.Sleep(60 * time.Millisecond) // past the 20 ms deadline
	for i := range 3 {
		if err := rec.conn.Send(Text(fmt.Appendf(nil, "inline %d", i))); err != nil {
			t.Fatal(err)
		}
		if f := c.readFrame(); string(f.Payload) != fmt.Sprint("inline ", i) {
			t.Fatalf("got %q", f.Payload)
		}
	}
}

// TestFailedInlineWriteEndsTheConnection: an inline write that fails
// (here the server's side of the socket was shut for writing, so write(2)
// returns EPIPE while the reader still waits) tears the connection down as
// the writer goroutine would: the handler hears the close and Send refuses.
func TestFailedInlineWriteEndsTheConnection(t *testing.T) {
	s := newWSServer(t, &Upgrader{Poller: newTestPoller(t)}, false)
	_, _ = dialRaw(t, s.URL, "")
	rec := <-s.conns
	if err := rec.conn.(*wsConn).out.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := rec.conn.Send(Text([]byte("into a shut socket"))); err != nil {
		t.Fatalf("first send: %v (the failure is the write's, after Send queued it)", err)
	}
	if err := rec.conn.Send(Text([]byte("after the failure"))); err == nil {
		t.Fatal("Send accepted a message after the write failed")
	}
	select {
	case info := <-rec.closed:
		if info.Code != 0 || !errors.Is(info.Err, syscall.EPIPE) {
			t.Errorf("close %d, cause %v: want no close frame and the write's EPIPE", info.Code, info.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never heard the close")
	}
}

// TestPingOnAQuietConnectionIsWrittenInline: a keep-alive round pings
// every connection; on a quiet one the ping must be in the socket when
// Ping returns, with no writer goroutine started for it, and in order
// with the data around it.
func TestPingOnAQuietConnectionIsWrittenInline(t *testing.T) {
	s := newWSServer(t, &Upgrader{Poller: newTestPoller(t)}, false)
	c, _ := dialRaw(t, s.URL, "")
	rec := <-s.conns
	out := &rec.conn.(*wsConn).out
	for i := range 3 {
		if err := rec.conn.Send(Text(fmt.Appendf(nil, "before %d", i))); err != nil {
			t.Fatal(err)
		}
		rec.conn.Ping()
		out.mu.Lock()
		writing, queued := out.writing, len(out.items)
		out.mu.Unlock()
		if writing || queued != 0 {
			t.Fatalf("round %d: after Ping the writer role is taken (%v) with %d queued: not written inline", i, writing, queued)
		}
		if err := rec.conn.Send(Text(fmt.Appendf(nil, "after %d", i))); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{fmt.Sprintf("text before %d", i), "ping", fmt.Sprintf("text after %d", i)} {
			_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			f, err := wstest.ReadFrame(c.br, wstest.MaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			got := "ping"
			if f.Header.OpCode != ws.OpPing {
				got = "text " + string(f.Payload)
			}
			if got != want {
				t.Fatalf("round %d: got %q, want %q", i, got, want)
			}
		}
	}
}
