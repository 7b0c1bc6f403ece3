package wsaccept

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what a handler saw of one request.
type seen struct {
	fast       bool // served through wsaccept's own path
	method     string
	url        string
	requestURI string
	proto      string
	host       string
	header     http.Header
	length     int64
	close      bool
	srv        bool // http.ServerContextKey set
	local      bool // http.LocalAddrContextKey set
}

type recorder struct {
	mu   sync.Mutex
	last seen
}

// ServeHTTP records the request and refuses it the way the server's
// middleware does (a header, http.Error).
func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, fast := w.(*response)
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	rec.mu.Lock()
	rec.last = seen{
		fast: fast, method: r.Method, url: r.URL.String(), requestURI: r.RequestURI,
		proto: r.Proto, host: r.Host, header: r.Header, length: r.ContentLength, close: r.Close,
		srv: r.Context().Value(http.ServerContextKey) != nil,
	}
	rec.last.local = local != nil
	rec.mu.Unlock()
	w.Header().Set("Retry-After", "3")
	http.Error(w, "refused: "+r.URL.Path, http.StatusTooManyRequests)
}

func (rec *recorder) get() seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

// startPair starts the same handler behind net/http alone and behind
// Serve.
func startPair(t *testing.T, h http.Handler) (plain, fast string) {
	t.Helper()
	start := func(serve func(net.Listener, *http.Server) error) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: log.New(io.Discard, "", 0)}
		done := make(chan error, 1)
		go func() { done <- serve(ln, srv) }()
		t.Cleanup(func() {
			_ = srv.Close()
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve returned %v, want http.ErrServerClosed", err)
			}
		})
		return ln.Addr().String()
	}
	return start(func(ln net.Listener, s *http.Server) error { return s.Serve(ln) }), start(Serve)
}

// roundTrip sends raw and returns the whole answer (the server closes).
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Header.Del("Date")
	var b strings.Builder
	b.WriteString(resp.Status + "\n")
	_ = resp.Header.Write(&b)
	b.Write(body)
	return b.String()
}

const chromeUpgrade = "GET /app/key?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1\r\n" +
	"Host: 127.0.0.1:6001\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: http://localhost:8080\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

// Node's ws (pusher-js on Node, the load generator's shape).
const nodeUpgrade = "GET /app/key?protocol=7 HTTP/1.1\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Connection: Upgrade\r\n" +
	"Upgrade: websocket\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"Host: localhost:6001\r\n\r\n"

// TestUpgradeRequestsAreSeenAsNetHTTPSeesThem sends the same bytes to the
// same handler behind net/http and behind Serve: the handler must see the
// same request, the client must get the same answer (Date aside), and the
// requests in the first group must have taken the fast path (else this
// test would prove nothing about it).
func TestUpgradeRequestsAreSeenAsNetHTTPSeesThem(t *testing.T) {
	rec := &recorder{}
	plain, fast := startPair(t, rec)
	big := strings.Repeat("a", 6000)
	for _, tc := range []struct {
		name string
		raw  string
		fast bool
	}{
		{"chrome", chromeUpgrade, true},
		{"node ws", nodeUpgrade, true},
		{"pragma alone", strings.Replace(nodeUpgrade, "Host:", "Pragma: no-cache\r\nHost:", 1), true},
		{"repeated header", strings.Replace(nodeUpgrade, "Host:", "Sec-WebSocket-Protocol: a\r\nsec-websocket-protocol: b, c\r\nHost:", 1), true},
		{"lower-case names, padded values", "GET /x HTTP/1.1\r\nhost:   h:1  \r\nupgrade:\twebsocket\t\r\nconnection: upgrade\r\n\r\n", true},
		{"upgrade list", strings.Replace(nodeUpgrade, "Upgrade: websocket", "Upgrade: foo, WebSocket", 1), true},
		{"ipv6 host", strings.Replace(nodeUpgrade, "localhost:6001", "[::1]:6001", 1), true},
		{"escaped path", strings.Replace(nodeUpgrade, "/app/key?protocol=7", "/app/k%20y/../z?a=%41&b", 1), true},
		{"head over the pooled buffer", strings.Replace(nodeUpgrade, "Host:", "Cookie: "+big[:2000]+"\r\nHost:", 1), true},
		{"empty value", strings.Replace(nodeUpgrade, "Host:", "X-Empty:\r\nHost:", 1), true},

		{"post", strings.Replace(nodeUpgrade, "GET", "POST", 1), false},
		{"http/1.0", strings.Replace(nodeUpgrade, "HTTP/1.1", "HTTP/1.0", 1), false},
		{"no upgrade", strings.Replace(nodeUpgrade, "Upgrade: websocket\r\n", "", 1), false},
		{"connection close", strings.Replace(nodeUpgrade, "Connection: Upgrade", "Connection: Upgrade, close", 1), false},
		{"content-length", strings.Replace(nodeUpgrade, "Host:", "Content-Length: 0\r\nHost:", 1), false},
		{"absolute form", strings.Replace(nodeUpgrade, "/app/key", "http://localhost:6001/app/key", 1), false},
		{"bare LF", strings.ReplaceAll(nodeUpgrade, "\r\n", "\n"), false},
		{"obs-fold", strings.Replace(nodeUpgrade, "Host:", "X-Fold: a\r\n b\r\nHost:", 1), false},
		{"utf-8 value", strings.Replace(nodeUpgrade, "Host:", "X-Name: caf\xc3\xa9\r\nHost:", 1), false},
		{"two hosts", strings.Replace(nodeUpgrade, "Upgrade:", "Host: other\r\nUpgrade:", 1), false},
		{"head over the buffer", strings.Replace(nodeUpgrade, "Host:", "Cookie: "+big+"\r\nHost:", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAnswer := roundTrip(t, plain, tc.raw)
			want := rec.get()
			gotAnswer := roundTrip(t, fast, tc.raw)
			got := rec.get()
			if got.fast != tc.fast {
				t.Errorf("fast path %v, want %v", got.fast, tc.fast)
			}
			got.fast, want.fast = false, false
			if !reflect.DeepEqual(got, want) {
				t.Errorf("handler saw\n%+v\nnet/http alone gives\n%+v", got, want)
			}
			if gotAnswer != wantAnswer {
				t.Errorf("answer\n%s\nnet/http alone answers\n%s", gotAnswer, wantAnswer)
			}
		})
	}
}

// TestRefusalsMatchNetHTTP: the answers a bad request gets from net/http
// itself (no handler runs) are unchanged when they pass through Serve.
func TestRefusalsMatchNetHTTP(t *testing.T) {
	plain, fast := startPair(t, &recorder{})
	for _, raw := range []string{
		"GET /x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",                           // no Host
		"GET /x HTTP/1.1\r\nHost: a b\r\nUpgrade: websocket\r\n\r\n",              // bad Host
		"GET /x HTTP/1.1\r\nHost: h\r\nBad Name: v\r\nUpgrade: websocket\r\n\r\n", // bad name
		"GET /x HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("b", 20000) + "\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", // a TLS hello
	} {
		if got, want := roundTrip(t, fast, raw), roundTrip(t, plain, raw); got != want {
			t.Errorf("%.40q: answer\n%s\nnet/http alone answers\n%s", raw, got, want)
		}
	}
}

// TestHijackerGetsTheBytesSentBehindTheHead: a client that sends its first
// frame in the same segment as its head loses nothing.
func TestHijackerGetsTheBytesSentBehindTheHead(t *testing.T) {
	got := make(chan string, 1)
	_, fast := startPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		defer func() { _ = c.Close() }()
		early, _ := rw.Peek(rw.Reader.Buffered())
		more := make([]byte, 5)
		_, _ = io.ReadFull(rw, more[:len(early)])
		_, _ = io.ReadFull(c, more[len(early):])
		got <- string(more)
	}))
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, nodeUpgrade+"abc"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the handler reads the rest from the socket
	_, _ = io.WriteString(c, "de")
	if s := <-got; s != "abcde" {
		t.Fatalf("hijacker read %q, want %q", s, "abcde")
	}
}

// TestHandedOffConnectionsStayAlive: a plain request passed to net/http
// keeps its connection for the next one.
func TestHandedOffConnectionsStayAlive(t *testing.T) {
	_, fast := startPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/one", "/two"} {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "ok "+path {
			t.Fatalf("%s answered %q", path, body)
		}
	}
}

// TestIncompleteHeadIsClosed: a client that never finishes its head is
// closed after ReadHeaderTimeout, with no answer (as net/http does).
func TestIncompleteHeadIsClosed(t *testing.T) {
	rec := &recorder{}
	_, fast := startPair(t, rec)
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_, _ = io.WriteString(c, "GET /app/key HTTP/1.1\r\nHost: h\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || err != io.EOF {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	if rec.get().method != "" {
		t.Fatal("the handler ran for an incomplete head")
	}
}

// TestConnStateIsReported: the server's ConnState hook (its plain-HTTP
// connection cap) sees each connection as the one accepted, new exactly
// once: an upgraded one new, then hijacked; one passed to net/http new,
// then net/http's own states, then closed. And Serve returns
// http.ErrServerClosed after Shutdown.
func TestConnStateIsReported(t *testing.T) {
	var mu sync.Mutex
	states := map[net.Conn][]string{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				_, _ = io.WriteString(w, "plain")
				return
			}
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
				_ = c.Close()
			}
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			states[c] = append(states[c], st.String())
			mu.Unlock()
		},
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, srv) }()
	for _, raw := range []string{nodeUpgrade, "GET /plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, raw)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.ReadAll(c) // the server closes either way
		_ = c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for c, s := range states {
		if _, ok := c.(*replayConn); ok {
			t.Errorf("the hook saw the wrapper net/http was given: %v", s)
		}
		got = append(got, strings.Join(s, ","))
	}
	slices.Sort(got)
	if want := []string{"new,active,closed", "new,hijacked"}; !slices.Equal(got, want) {
		t.Fatalf("states %q, want %q", got, want)
	}
}

// TestAPanickingHandlerGetsNoAnswer: as under net/http, a handler that
// panics on an upgrade request leaves its client without an answer (no
// 200 for a request nobody answered), and the server serves on.
func TestAPanickingHandlerGetsNoAnswer(t *testing.T) {
	var fastPanics atomic.Int32
	plain, fast := startPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		if _, ok := w.(*response); ok {
			fastPanics.Add(1)
		}
		panic("handler bug")
	}))
	for _, addr := range []string{plain, fast} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, nodeUpgrade)
		got, err := io.ReadAll(c)
		_ = c.Close()
		if len(got) != 0 || err != nil {
			t.Errorf("%s: the client read %q (%v), want the connection closed with no answer", addr, got, err)
		}
		if a := roundTrip(t, addr, strings.Replace(nodeUpgrade, "/app/key?protocol=7", "/ok", 1)); !strings.HasSuffix(a, "ok") {
			t.Errorf("%s: after the panic the server answered %q", addr, a)
		}
	}
	if fastPanics.Load() != 1 {
		t.Fatalf("the fast path served %d of the panicking requests, want 1", fastPanics.Load())
	}
}

// TestTLSConnectionsGoToNetHTTP: on a TLS listener every connection is
// net/http's, unread, so the handler sees r.TLS; the ConnState hook sees
// each connection once.
func TestTLSConnectionsGoToNetHTTP(t *testing.T) {
	type sawReq struct {
		fast, tls bool
	}
	saw := make(chan sawReq, 1)
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // only for its certificate and a client that trusts it
	cfg := ts.TLS.Clone()
	client := ts.Client()
	ts.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	news := 0
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, fast := w.(*response)
			saw <- sawReq{fast: fast, tls: r.TLS != nil}
			_, _ = io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				news++
				mu.Unlock()
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- Serve(tls.NewListener(raw, cfg), srv) }()
	defer func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}()
	req, _ := http.NewRequest(http.MethodGet, "https://"+raw.Addr().String()+"/app/key", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := <-saw; got.fast || !got.tls {
		t.Fatalf("handler saw fast=%v tls=%v, want net/http's request with its TLS state", got.fast, got.tls)
	}
	mu.Lock()
	defer mu.Unlock()
	if news != 1 {
		t.Fatalf("ConnState saw %d new connections, want 1", news)
	}
}
