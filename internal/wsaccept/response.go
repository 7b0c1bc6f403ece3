package wsaccept

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRefusalBody bounds what a handler may write on an upgrade request it
// refuses (its error text); more fails the Write.
const maxRefusalBody = 64 << 10

// closeLinger is how long a refused connection's read side stays open
// after its answer, so that the close does not reset the connection while
// the answer is still in flight (net/http waits 500 ms likewise).
const closeLinger = 500 * time.Millisecond

var errRefusalTooLarge = errors.New("wsaccept: response body over 64 KiB on an upgrade request")

// response is the http.ResponseWriter of an upgrade request read here.
// Hijack hands out the socket; a handler that answers instead (an error, a
// redirect) gets its answer written by finish, with "Connection: close",
// as net/http writes one.
type response struct {
	a    *acceptor
	c    net.Conn
	rest string // bytes read behind the head, for the hijacker

	header http.Header
	sent   http.Header // the header as of WriteHeader
	status int
	body   []byte
	hj     bool
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.hj || w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational: nothing a refused upgrade needs
	}
	w.status = code
	w.sent = w.Header().Clone()
}

func (w *response) Write(p []byte) (int, error) {
	if w.hj {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(w.body)+len(p) > maxRefusalBody {
		return 0, errRefusalTooLarge
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Hijack implements http.Hijacker. The reader holds the bytes the client
// sent behind its head; nothing is buffered for writing.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hj {
		return nil, nil, http.ErrHijacked
	}
	if w.status != 0 {
		return nil, nil, errors.New("wsaccept: Hijack after WriteHeader")
	}
	w.hj = true
	w.a.connState(w.c, http.StateHijacked)
	var br *bufio.Reader
	if w.rest == "" {
		br = bufio.NewReaderSize(w.c, 16)
	} else {
		br = bufio.NewReaderSize(io.MultiReader(strings.NewReader(w.rest), w.c), max(len(w.rest), 16))
		_, _ = br.Peek(len(w.rest)) // buffered, as net/http's reader would have them
	}
	return w.c, bufio.NewReadWriter(br, bufio.NewWriterSize(w.c, 16)), nil
}

// finish writes the handler's answer and closes the connection.
func (w *response) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	h := w.sent
	if bodyAllowed(w.status) {
		if _, ok := h["Content-Type"]; !ok && len(w.body) > 0 {
			h.Set("Content-Type", http.DetectContentType(w.body))
		}
		h.Set("Content-Length", strconv.Itoa(len(w.body)))
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	h.Set("Connection", "close")
	var b bytes.Buffer
	text := http.StatusText(w.status)
	if text == "" {
		text = "status code " + strconv.Itoa(w.status)
	}
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, text)
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.body)
	_ = w.c.SetWriteDeadline(time.Now().Add(closeLinger))
	if _, err := w.c.Write(b.Bytes()); err == nil {
		if cw, ok := w.c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = w.c.SetReadDeadline(time.Now().Add(closeLinger))
			_, _ = io.Copy(io.Discard, io.LimitReader(w.c, maxRefusalBody))
		}
	}
	_ = w.c.Close()
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
