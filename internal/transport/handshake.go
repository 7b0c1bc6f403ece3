package transport

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// The handshake's response is not written when gobwas/ws writes it: it is
// held and goes out with the connection's first frame in one write (a
// Pusher greeting is sent by newHandler, before the upgrade returns), or
// alone once newHandler returns. A 10,000-connection storm spent 10.6% of
// the server's CPU writing the 101 on its own (pprof; the greeting's
// write is another 7%), and the client got two segments to read instead
// of one. Measured on the whole storm (server CPU for 10,000 connect+
// subscribe, server on CPU 0, 14 alternating runs each): median 1.68 s
// against 1.76 s before, about 5% less, inside this VM's run-to-run
// spread (1.55-2.35 s and 1.55-2.47 s).

// heldResponse is an http.ResponseWriter for gobwas/ws's upgrader whose
// Hijack hands out a writer into buf instead of into the connection.
type heldResponse struct {
	http.ResponseWriter
	bw  *bufio.Writer
	buf []byte
}

var heldResponses = sync.Pool{New: func() any {
	h := &heldResponse{}
	h.bw = bufio.NewWriterSize(heldSink{h}, 512)
	return h
}}

// heldSink appends what the bufio.Writer flushes to its heldResponse.
type heldSink struct{ h *heldResponse }

func (s heldSink) Write(p []byte) (int, error) {
	s.h.buf = append(s.h.buf, p...)
	return len(p), nil
}

func getHeldResponse(w http.ResponseWriter) *heldResponse {
	h := heldResponses.Get().(*heldResponse)
	h.ResponseWriter = w
	h.buf = h.buf[:0]
	h.bw.Reset(heldSink{h})
	return h
}

func (h *heldResponse) release() {
	h.ResponseWriter = nil
	if cap(h.buf) > 4096 {
		h.buf = nil
	}
	heldResponses.Put(h)
}

// Hijack implements http.Hijacker: the connection and its buffered reader
// as net/http hands them out (through any wrapper that unwraps), the
// writer into buf.
func (h *heldResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(rw.Reader, h.bw), nil
}

// response is a copy of what was written, for the connection to keep
// until it goes out.
func (h *heldResponse) response() []byte {
	return append([]byte(nil), h.buf...)
}
