package transport

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestSendAllToAQuietConnectionIsOneWrite: SendAll to a connection with
// nothing queued makes one write for all its frames, which arrive in
// order; with a frame too big to write inline among them, they still
// arrive whole and in order, through the writer goroutine.
func TestSendAllToAQuietConnectionIsOneWrite(t *testing.T) {
	obs := &writesObserver{}
	s := newWSServer(t, &Upgrader{Poller: newTestPoller(t), Options: Options{Observer: obs}}, false)
	c, _ := dialRaw(t, s.URL, "")
	rec := <-s.conns
	waitFor(t, "the 101 to be counted", func() bool { return obs.first() > 0 })
	writes := func() []int {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return slices.Clone(obs.writes[1:])
	}

	ms := []*Message{Text([]byte("one")), Text([]byte("two")), Binary([]byte("three"))}
	if err := SendAll(rec.conn, ms); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two", "three"} {
		if f := c.readFrame(); string(f.Payload) != want {
			t.Fatalf("got %q, want %q", f.Payload, want)
		}
	}
	if got, want := writes(), []int{2 + 3 + 2 + 3 + 2 + 5}; !slices.Equal(got, want) {
		t.Fatalf("writes after the 101: %v, want %v (one write of three frames)", got, want)
	}

	big := numbered(0, 1, inlineMaxBytes+100)
	if err := SendAll(rec.conn, []*Message{Text([]byte("before")), big, Text([]byte("after"))}); err != nil {
		t.Fatal(err)
	}
	if f := c.readFrame(); string(f.Payload) != "before" {
		t.Fatalf("got %q, want before", f.Payload)
	}
	if f := c.readFrame(); len(f.Payload) != inlineMaxBytes+100 {
		t.Fatalf("got %d bytes, want the big frame", len(f.Payload))
	}
	if f := c.readFrame(); string(f.Payload) != "after" {
		t.Fatalf("got %q, want after", f.Payload)
	}
	waitFor(t, "the send queue to empty", func() bool { return rec.conn.QueuedBytes() == 0 })
}

// TestSendAllKeepsEachSendersOrder: senders mix Send and SendAll of 1-4
// frames (some too big for an inline write) on one connection whose socket
// fills up; every frame arrives whole, once, in each sender's order.
func TestSendAllKeepsEachSendersOrder(t *testing.T) {
	c, rec := smallBufferConn(t)
	const senders, each = 4, 300
	var wg sync.WaitGroup
	for id := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < each; {
				k := min(1+seq%4, each-seq)
				var ms []*Message
				for i := range k {
					ms = append(ms, numbered(id, seq+i, frameSize(seq+i)))
				}
				var err error
				if seq%3 == 0 && k == 1 {
					err = rec.conn.Send(ms[0])
				} else {
					err = SendAll(rec.conn, ms)
				}
				if err != nil {
					t.Errorf("send %d/%d: %v", id, seq, err)
					return
				}
				seq += k
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the socket buffers fill first
	readEachSendersOrder(t, c, rec, senders, each)
	wg.Wait()
	waitFor(t, "the send queue to empty", func() bool { return rec.conn.QueuedBytes() == 0 })
}

// TestSendAllOnAPerMessageStreamWritesEachAlone: a stream whose clients
// parse each read on its own (WritePerMessage, Damon's) gets one write per
// message from SendAll too, not one for all.
func TestSendAllOnAPerMessageStreamWritesEachAlone(t *testing.T) {
	obs := &writesObserver{}
	addr, recs := newStreamServer(t, &StreamServer{WritePerMessage: true, Options: Options{Observer: obs}})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nc.Close() }()
	rec := <-recs
	if err := SendAll(rec.conn, []*Message{Text([]byte("{}")), Text([]byte("{\"a\":1}")), Text([]byte("[]"))}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 16)
	buf := make([]byte, 64)
	for len(got) < 11 {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:k]...)
	}
	if string(got) != `{}{"a":1}[]` {
		t.Fatalf("got %q", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !slices.Equal(obs.writes, []int{2, 7, 2}) {
		t.Fatalf("writes %v, want [2 7 2]: one per message", obs.writes)
	}
}
