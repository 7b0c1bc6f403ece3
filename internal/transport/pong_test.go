package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestUnsentPongIsReplacedByTheNewest: while the writer is stuck behind a
// message the client does not read, a hundred pings leave one pending pong,
// the answer to the last one (RFC 6455 section 5.5.3).
func TestUnsentPongIsReplacedByTheNewest(t *testing.T) {
	forEachReader(t, func(t *testing.T, poller *Poller) {
		s := newWSServer(t, &Upgrader{Poller: poller, Options: Options{SendQueueBytes: 64 << 20}}, false)
		c, _ := dialRaw(t, s.URL, "")
		// A fixed receive buffer stops autotuning: 16 MiB cannot fit in
		// the socket buffers, so the writer stays blocked until we read.
		_ = c.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
		rec := <-s.conns
		big := make([]byte, 16<<20)
		if err := rec.conn.Send(Binary(big)); err != nil {
			t.Fatal(err)
		}
		const pings = 100
		for i := 0; i < pings; i++ {
			c.writeFrame(ws.NewPingFrame([]byte(fmt.Sprint("ping ", i))))
		}
		// The reader handles frames in order: once "sync" arrives, every
		// ping before it has been answered.
		c.writeFrame(ws.NewTextFrame([]byte("sync")))
		waitFor(t, "the sync message", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return len(rec.msgs) == 1
		})
		// The writer may have taken one pong along with the big message
		// before blocking; every later one replaced the pending pong.
		last := fmt.Sprint("ping ", pings-1)
		if q, most := rec.conn.QueuedBytes(), len(big)+2*(2+len(last)); q > most {
			t.Fatalf("queued %d bytes, want at most %d: the 16 MiB message and two pongs", q, most)
		}
		if f := c.readFrame(); f.Header.OpCode != ws.OpBinary || len(f.Payload) != len(big) {
			t.Fatalf("got %v of %d bytes", f.Header.OpCode, len(f.Payload))
		}
		var pongs []string
		for len(pongs) == 0 || pongs[len(pongs)-1] != last {
			f := c.readFrame()
			if f.Header.OpCode != ws.OpPong {
				t.Fatalf("got %v %q, want pongs up to the one for %q", f.Header.OpCode, f.Payload, last)
			}
			pongs = append(pongs, string(f.Payload))
		}
		if len(pongs) > 2 {
			t.Fatalf("%d pongs for %d pings sent into a full socket, want at most 2: %q", len(pongs), pings, pongs)
		}
		// Nothing else was queued: the next frame answers the next ping.
		c.writeFrame(ws.NewPingFrame([]byte("after")))
		if f := c.readFrame(); f.Header.OpCode != ws.OpPong || string(f.Payload) != "after" {
			t.Fatalf("got %v %q, want the pong to \"after\"", f.Header.OpCode, f.Payload)
		}
	})
}

// TestPingsIntoAFullSocketAreASlowConsumer: a client that keeps pinging
// while it reads nothing must not grow the send queue past its bound or
// keep the connection until the write timeout: once the queue is full, its
// pongs overflow it like data would, and it is closed as a slow consumer.
func TestPingsIntoAFullSocketAreASlowConsumer(t *testing.T) {
	const bound = 16 << 20
	up := &Upgrader{Options: Options{SendQueueBytes: bound, WriteTimeout: time.Minute, SlowConsumerCode: 4100}}
	s := newWSServer(t, up, false)
	c, _ := dialRaw(t, s.URL, "")
	_ = c.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	rec := <-s.conns
	// Far more than the socket buffers take: the writer blocks with the
	// queue 4 KiB short of full, the state a ping flood reaches once the
	// client's receive window is shut.
	if err := rec.conn.Send(Binary(make([]byte, bound-4<<10))); err != nil {
		t.Fatal(err)
	}

	ping := ws.MustCompileFrame(ws.MaskFrame(ws.NewPingFrame(bytes.Repeat([]byte{'p'}, 125))))
	var info *CloseInfo
	sent := 0
flood:
	for ; sent < 100_000; sent++ {
		select {
		case ci := <-rec.closed:
			info = &ci
			break flood
		default:
		}
		if q := rec.conn.QueuedBytes(); q > bound {
			t.Fatalf("%d bytes queued after %d unread pings: past the %d-byte bound", q, sent, bound)
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.nc.Write(ping); err != nil {
			break // the server dropped the connection
		}
	}
	if info == nil {
		select {
		case ci := <-rec.closed:
			info = &ci
		case <-time.After(10 * time.Second):
			t.Fatalf("connection still open after %d unread pings", sent)
		}
	}
	if !errors.Is(info.Err, ErrSlowConsumer) || info.Code != 4100 || !info.ByServer {
		t.Fatalf("CloseInfo %+v, want a slow-consumer close 4100", *info)
	}
}

// TestPingFloodWithoutReadingIsASlowConsumer is the flood of issue 10 with
// nothing queued but pongs: 125-byte pings from a client that never reads.
// net.Pipe has no buffer, so nothing the server writes leaves until read:
// the state a TCP socket reaches once such a client's window is shut. (On
// loopback TCP the client's own kernel soon stalls its sending too, which
// is why the TCP test above fills the queue with data first.)
func TestPingFloodWithoutReadingIsASlowConsumer(t *testing.T) {
	const bound = 4096
	up := &Upgrader{Options: Options{SendQueueBytes: bound, SlowConsumerCode: 4100, WriteTimeout: time.Minute}}
	up.init()
	server, client := net.Pipe()
	defer func() { _ = client.Close() }()
	c := &wsConn{id: 1, up: up, br: bufio.NewReaderSize(server, 512)}
	c.out.init(server, &up.opts, up.opts.Observer, c)
	rec := &recorder{conn: c, closed: make(chan CloseInfo, 1)}
	c.handler = rec
	go c.readLoop()

	ping := maskedFrame(0x89, bytes.Repeat([]byte{'p'}, 125))
	var info *CloseInfo
	sent := 0
flood:
	for ; sent < 100_000; sent++ {
		select {
		case ci := <-rec.closed:
			info = &ci
			break flood
		default:
		}
		if q := c.QueuedBytes(); q > bound {
			t.Fatalf("%d bytes queued after %d unread pings: past the %d-byte bound", q, sent, bound)
		}
		_ = client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write(ping); err != nil {
			break // the server closed the connection
		}
	}
	if info == nil {
		select {
		case ci := <-rec.closed:
			info = &ci
		case <-time.After(10 * time.Second):
			t.Fatalf("connection still open after %d unread pings", sent)
		}
	}
	if !errors.Is(info.Err, ErrSlowConsumer) || info.Code != 4100 || !info.ByServer {
		t.Fatalf("CloseInfo %+v, want a slow-consumer close 4100", *info)
	}
}
