package transport

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// writesObserver records the size of every write the transport reports.
type writesObserver struct {
	mu     sync.Mutex
	writes []int
}

func (o *writesObserver) MessageIn(int) {}
func (o *writesObserver) SlowConsumer() {}
func (o *writesObserver) BytesOut(n int) {
	o.mu.Lock()
	o.writes = append(o.writes, n)
	o.mu.Unlock()
}

func (o *writesObserver) first() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.writes) == 0 {
		return 0
	}
	return o.writes[0]
}

// TestHandshakeResponseGoesOutWithTheGreeting: the 101 and a frame sent
// by newHandler leave in one write, and arrive in order; without a frame
// the 101 still goes out; without inline writes (no poller) both still
// arrive in order through the writer goroutine; a refused handshake still
// gets its 400.
func TestHandshakeResponseGoesOutWithTheGreeting(t *testing.T) {
	for _, tc := range []struct {
		name     string
		poller   bool
		greeting string
	}{
		{"inline, greeting", true, "hello"},
		{"inline, silent handler", true, ""},
		{"writer goroutine, greeting", false, "hello"},
		{"writer goroutine, silent handler", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &writesObserver{}
			up := &Upgrader{Options: Options{Observer: obs}}
			if tc.poller {
				up.Poller = newTestPoller(t)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = up.Upgrade(w, r, nil, func(c Conn) Handler {
					if tc.greeting != "" {
						_ = c.Send(Text([]byte(tc.greeting)))
					}
					return &recorder{conn: c, closed: make(chan CloseInfo, 1)}
				})
			}))
			defer srv.Close()
			c, resp := dialRaw(t, srv.URL, "")
			if resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Fatalf("accept %q", resp.Header.Get("Sec-WebSocket-Accept"))
			}
			if tc.greeting == "" {
				waitFor(t, "the 101 to be counted", func() bool { return obs.first() > 0 })
				return
			}
			f := c.readFrame()
			if f.Header.OpCode != ws.OpText || string(f.Payload) != tc.greeting {
				t.Fatalf("first frame %v %q", f.Header.OpCode, f.Payload)
			}
			if !tc.poller {
				return
			}
			// One write: the 101's bytes and the frame's (2 header bytes).
			if got, frame := obs.first(), 2+len(tc.greeting); got <= frame {
				t.Fatalf("first write %d bytes: the %d-byte frame alone, the 101 went separately", got, frame)
			}
		})
	}
	t.Run("refused handshake", func(t *testing.T) {
		up := &Upgrader{Poller: newTestPoller(t)}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = up.Upgrade(w, r, nil, func(c Conn) Handler { return &recorder{conn: c, closed: make(chan CloseInfo, 1)} })
		}))
		defer srv.Close()
		nc, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = nc.Close() }()
		// Version 8: gobwas refuses it after hijacking, with 426 and the
		// version it speaks.
		req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 400 {
			t.Fatalf("status %d for a refused handshake (%q)", resp.StatusCode, body)
		}
	})
}
