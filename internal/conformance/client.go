// Package conformance checks Switchboard's WebSocket endpoints against the
// behaviour the Autobahn|Testsuite expects of a server (RFC 6455 and RFC
// 7692), with Go tests run against a real server on loopback. The package
// holds only this raw client and tests: the client writes every frame by
// hand (header, mask, payload) so the tests can send what no WebSocket
// library would, and it reads server frames without hiding any of their
// bits.
package conformance

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Frame is one WebSocket frame as sent or received. Rsv holds the three
// reserved bits, RSV1 as 4, RSV2 as 2, RSV3 as 1.
type Frame struct {
	Fin     bool
	Rsv     byte
	Op      byte
	Payload []byte
	// Masked is set on a received frame that carried a mask (a server
	// must never send one).
	Masked bool
}

// Client is a raw WebSocket client connection.
type Client struct {
	nc net.Conn
	br *bufio.Reader
	// Response is the server's handshake answer.
	Response *http.Response
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Dial connects to addr and performs the opening handshake for path, with
// extra request header lines (each ending in \r\n).
func Dial(addr, path, extra string) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		_ = nc.Close() // the handshake error is the one to report
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = nc.Close() // the handshake error is the one to report
		return nil, err
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		err = fmt.Errorf("handshake status %d", resp.StatusCode)
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		err = fmt.Errorf("handshake Upgrade header %q", resp.Header.Get("Upgrade"))
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		err = fmt.Errorf("bad Sec-WebSocket-Accept %q", resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if err != nil {
		_ = nc.Close() // the handshake error is the one to report
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &Client{nc: nc, br: br, Response: resp}, nil
}

// AppendFrame appends f as a client frame, masked with a random key.
func AppendFrame(dst []byte, f Frame) []byte {
	b0 := f.Op&0x0f | (f.Rsv&0x7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	dst = AppendHeader(dst, b0, uint64(len(f.Payload)))
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	dst = append(dst, mask[:]...)
	for i, c := range f.Payload {
		dst = append(dst, c^mask[i&3])
	}
	return dst
}

// AppendHeader appends a masked frame's first byte and length fields (the
// mask key is up to the caller). It can write any 64-bit length, including
// ones RFC 6455 forbids.
func AppendHeader(dst []byte, b0 byte, n uint64) []byte {
	switch {
	case n < 126:
		return append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		return append(dst, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 0x80|127)
		return binary.BigEndian.AppendUint64(dst, n)
	}
}

// Write sends raw bytes.
func (c *Client) Write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// WriteChunked sends raw bytes in writes of at most n bytes each, so the
// server sees frames arrive in pieces.
func (c *Client) WriteChunked(b []byte, n int) error {
	for len(b) > 0 {
		k := min(n, len(b))
		if err := c.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

// WriteFrames sends frames in one write.
func (c *Client) WriteFrames(fs ...Frame) error {
	var b []byte
	for _, f := range fs {
		b = AppendFrame(b, f)
	}
	return c.Write(b)
}

// ErrMaxFrame is returned for a server frame longer than ReadFrame accepts.
var ErrMaxFrame = errors.New("server frame over 64 MiB")

// ReadFrame reads one server frame, waiting until deadline.
func (c *Client) ReadFrame(deadline time.Time) (Frame, error) {
	_ = c.nc.SetReadDeadline(deadline)
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, Rsv: (h[0] >> 4) & 0x7, Op: h[0] & 0x0f, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return Frame{}, ErrMaxFrame
	}
	var mask [4]byte
	if f.Masked {
		if _, err := io.ReadFull(c.br, mask[:]); err != nil {
			return Frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.Payload); err != nil {
		return Frame{}, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i&3]
		}
	}
	return f, nil
}

// CloseWrite half-closes the TCP connection (FIN without a close frame).
func (c *Client) CloseWrite() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return c.nc.Close()
}

// Close drops the TCP connection.
func (c *Client) Close() error { return c.nc.Close() }

// CloseBody builds a close frame payload.
func CloseBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}
