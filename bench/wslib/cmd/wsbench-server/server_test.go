package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// startMode serves one mode on a loopback port and returns its ws:// URL.
func startMode(t *testing.T, mode string) (server, string) {
	t.Helper()
	srv := modes[mode]()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() { _ = srv.serve(ln) }() // ends with an error when Cleanup closes ln
	return srv, "ws://" + ln.Addr().String() + "/"
}

func dial(t *testing.T, url string) (net.Conn, io.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if br != nil {
		return nc, br
	}
	return nc, bufio.NewReader(nc)
}

func waitCount(t *testing.T, srv server, n int) {
	t.Helper()
	for i := 0; i < 200 && srv.count() != n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.count(); got != n {
		t.Fatalf("count = %d, want %d", got, n)
	}
}

// Every mode must deliver every broadcast, in order, to every subscriber:
// the benchmark numbers mean nothing otherwise.
func TestBroadcastAllModes(t *testing.T) {
	for mode := range modes {
		t.Run(mode, func(t *testing.T) {
			srv, url := startMode(t, mode)
			var readers []io.Reader
			for i := 0; i < 3; i++ {
				_, r := dial(t, url)
				readers = append(readers, r)
			}
			waitCount(t, srv, 3)
			msgs := makeMessages(20, 100)
			go srv.broadcast(msgs)
			for i, r := range readers {
				for j, want := range msgs {
					got, err := wsutil.ReadServerText(rwOnly{r})
					if err != nil {
						t.Fatalf("reader %d msg %d: %v", i, j, err)
					}
					if string(got) != string(want) {
						t.Fatalf("reader %d msg %d: got %q", i, j, got[:9])
					}
				}
			}
		})
	}
}

// rwOnly adapts a reader for wsutil helpers that want an io.ReadWriter but
// only write in reply to control frames, which these tests do not send.
type rwOnly struct{ io.Reader }

func (rwOnly) Write(p []byte) (int, error) { return len(p), nil }

// The prebuilt reader is hand-written, so its RFC 6455 handling is checked
// here rather than trusted.
func TestPrebuiltProtocol(t *testing.T) {
	cases := []struct {
		name     string
		frame    ws.Frame
		masked   bool
		wantOp   ws.OpCode
		wantCode ws.StatusCode // for close replies
		wantBody string        // for pong
	}{
		{
			name:     "ping gets pong",
			frame:    ws.NewPingFrame([]byte("hi")),
			masked:   true,
			wantOp:   ws.OpPong,
			wantBody: "hi",
		},
		{
			name:     "close is echoed",
			frame:    ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")),
			masked:   true,
			wantOp:   ws.OpClose,
			wantCode: ws.StatusGoingAway,
		},
		{
			name:     "invalid utf-8 text",
			frame:    ws.NewTextFrame([]byte{0xff, 0xfe}),
			masked:   true,
			wantOp:   ws.OpClose,
			wantCode: ws.StatusInvalidFramePayloadData,
		},
		{
			name:     "unmasked client frame",
			frame:    ws.NewTextFrame([]byte("x")),
			masked:   false,
			wantOp:   ws.OpClose,
			wantCode: ws.StatusProtocolError,
		},
		{
			name:     "reserved opcode",
			frame:    ws.NewFrame(ws.OpCode(0x3), true, nil),
			masked:   true,
			wantOp:   ws.OpClose,
			wantCode: ws.StatusProtocolError,
		},
		{
			name:     "close code 1005 is invalid on the wire",
			frame:    ws.NewCloseFrame([]byte{0x03, 0xed}),
			masked:   true,
			wantOp:   ws.OpClose,
			wantCode: ws.StatusProtocolError,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startMode(t, "gobwas-prebuilt")
			nc, r := dial(t, url)
			f := tc.frame
			if tc.masked {
				f = ws.MaskFrameInPlace(f)
			}
			if err := ws.WriteFrame(nc, f); err != nil {
				t.Fatal(err)
			}
			got, err := readBoundedFrame(r, maxTestFrame)
			if err != nil {
				t.Fatal(err)
			}
			if got.Header.OpCode != tc.wantOp {
				t.Fatalf(
					"opcode %v, want %v",
					got.Header.OpCode, tc.wantOp,
				)
			}
			if tc.wantOp == ws.OpPong && string(got.Payload) != tc.wantBody {
				t.Fatalf(
					"pong %q, want %q",
					got.Payload, tc.wantBody,
				)
			}
			if tc.wantOp == ws.OpClose {
				code, _ := ws.ParseCloseFrameData(got.Payload)
				if code != tc.wantCode {
					t.Fatalf(
						"close code %d, want %d",
						code, tc.wantCode,
					)
				}
				// The server closes the TCP connection after its close frame.
				if _, err := r.Read(make([]byte, 1)); err == nil {
					t.Fatal("connection still open after close")
				}
			}
		})
	}
}

// readBoundedFrame reads one frame as ws.ReadFrame did (payload not
// unmasked), refusing a declared length over max instead of reading
// whatever the peer announces.
func readBoundedFrame(r io.Reader, max int64) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > max {
		return ws.Frame{}, fmt.Errorf("frame payload of %d bytes, over %d", h.Length, max)
	}
	f := ws.Frame{Header: h}
	if h.Length > 0 {
		f.Payload = make([]byte, h.Length)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return ws.Frame{}, err
		}
	}
	return f, nil
}

// maxTestFrame bounds a frame this test client reads: far above what the
// tests send, so only a broken length stops it.
const maxTestFrame = 16 << 20
