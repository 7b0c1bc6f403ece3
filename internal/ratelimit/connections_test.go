package ratelimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// upgradeFrom sends a WebSocket upgrade request from local address src
// (empty: any) and returns the response status line and headers.
func upgradeFrom(t *testing.T, srvAddr, src, path string) *http.Response {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(l string, client netip.Addr) {
	c.mu.Lock()
	c.n[l]++
	c.n[l+" "+client.String()]++
	c.mu.Unlock()
}
func (c *counter) get(l string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[l]
}

func TestMiddlewareRefusesUpgradesOverTheLimit(t *testing.T) {
	clk := newClock() // frozen: no refill during the test
	refused := &counter{n: map[string]int{}}
	lim := NewConnections(ConnectionOptions{Rate: Rate{PerSecond: 0.5, Burst: 2}, Refused: refused.inc, Now: clk.Now})
	reached := 0
	var mu sync.Mutex
	srv := httptest.NewServer(lim.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot) // stands in for the upgrade
	})))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	for i := range 2 {
		if resp := upgradeFrom(t, addr, "127.0.0.1", "/app/k"); resp.StatusCode != http.StatusTeapot {
			t.Fatalf("upgrade %d: %s", i, resp.Status)
		}
	}
	resp := upgradeFrom(t, addr, "127.0.0.1", "/damon")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("3rd: %s Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(body), "too many new connections") || !resp.Close {
		t.Fatalf("body %q, close %v", body, resp.Close)
	}
	// Another address is not affected.
	if resp := upgradeFrom(t, addr, "127.0.0.2", "/rooms/r"); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("127.0.0.2: %s", resp.Status)
	}
	// Plain HTTP requests are not counted.
	for range 5 {
		r, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
		if r.StatusCode != http.StatusTeapot {
			t.Fatalf("plain GET: %s", r.Status)
		}
	}
	mu.Lock()
	n := reached
	mu.Unlock()
	if refused.get("websocket 127.0.0.1") != 1 {
		t.Fatal("the refusal must name the client address")
	}
	if n != 3+5 || refused.get("websocket") != 1 {
		t.Fatalf("handler reached %d times, refusals %d", n, refused.get("websocket"))
	}
	// After the wait the address may connect again.
	clk.Add(2 * time.Second)
	if resp := upgradeFrom(t, addr, "127.0.0.1", "/app/k"); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("after Retry-After: %s", resp.Status)
	}
}

func TestMiddlewareHonoursTrustedProxyHeader(t *testing.T) {
	lim := NewConnections(ConnectionOptions{
		Rate:   Rate{PerSecond: 1, Burst: 1},
		Source: Source{Trusted: mustPrefixes(t, "127.0.0.1"), Header: "X-Forwarded-For"},
		Now:    newClock().Now,
	})
	srv := httptest.NewServer(lim.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	defer srv.Close()
	do := func(xff string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/app/k", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// Two clients behind the same proxy (our 127.0.0.1) each get a bucket.
	if a, b := do("198.51.100.1"), do("198.51.100.2"); a != http.StatusTeapot || b != http.StatusTeapot {
		t.Fatalf("%d %d", a, b)
	}
	if c := do("198.51.100.1"); c != http.StatusTooManyRequests {
		t.Fatalf("second from 198.51.100.1: %d", c)
	}
}

// Over the limit, the TCP listener closes the connection at once; the
// client reads EOF (or a reset), never data. Other addresses pass.
func TestListenerClosesRefusedConnections(t *testing.T) {
	refused := &counter{n: map[string]int{}}
	lim := NewConnections(ConnectionOptions{Rate: Rate{PerSecond: 1, Burst: 1}, Refused: refused.inc, Now: newClock().Now})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw, "damon_tcp")
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello\n")
			_ = c.Close()
		}
	}()
	read := func(src string) (string, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return "", err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if got, err := read("127.0.0.1"); got != "hello\n" || err != nil {
		t.Fatalf("first: %q %v", got, err)
	}
	got, err := read("127.0.0.1")
	var ne net.Error
	if got != "" || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("refused connection: %q %v (want EOF or reset, no data)", got, err)
	}
	if got, err := read("127.0.0.2"); got != "hello\n" || err != nil {
		t.Fatalf("other address: %q %v", got, err)
	}
	if n := refused.get("damon_tcp 127.0.0.1"); n != 1 {
		t.Fatalf("refusals %d", n)
	}
}
