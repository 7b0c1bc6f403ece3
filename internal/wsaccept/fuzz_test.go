package wsaccept

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseHead checks parseHead against net/http's own reading of the
// same bytes: whatever parseHead takes, http.ReadRequest must take too,
// with the same target, URL, Host and Header (less Host, which net/http's
// server deletes), and headEnd must find the end where net/http stops
// reading. Run long with `make fuzz` (FUZZTIME).
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		chromeUpgrade, nodeUpgrade,
		"GET /x HTTP/1.1\r\nhost:   h:1  \r\nupgrade:\twebsocket\t\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nPragma: no-cache\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nX: a\r\nx: b\r\n\r\n",
		// Known bad or unusual shapes, each to be refused or read alike.
		"GET /x HTTP/1.1\nHost: h\nUpgrade: websocket\n\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\n",
		"GET /x HTTP/1.1\r\nHost: h\r\n Upgrade: websocket\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost : h\r\nUpgrade: websocket\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: \r\nUpgrade: websocket\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
		"GET //a//b/../c?%ff#frag HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
		"GET /x  HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\x00\r\nUpgrade: websocket\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Close\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nX: \xff\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n:\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		end := headEnd([]byte(s))
		if end < 0 {
			return
		}
		h, ok := parseHead(s[:end])
		if !ok {
			return
		}
		br := bufio.NewReader(strings.NewReader(s))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("parseHead took %q; net/http refuses it: %v", s[:end], err)
		}
		if read := len(s) - br.Buffered(); read != end {
			// net/http read past the head only if it went on to a body,
			// which parseHead never takes.
			t.Fatalf("head ends at %d; net/http read %d of %q", end, read, s)
		}
		delete(r.Header, "Host")
		switch {
		case r.Method != http.MethodGet || r.Proto != "HTTP/1.1":
			t.Fatalf("net/http reads %s %s", r.Method, r.Proto)
		case r.RequestURI != h.target:
			t.Fatalf("target %q, net/http %q", h.target, r.RequestURI)
		case !reflect.DeepEqual(r.URL, h.url):
			t.Fatalf("URL %#v, net/http %#v", h.url, r.URL)
		case r.Host != h.host:
			t.Fatalf("host %q, net/http %q", h.host, r.Host)
		case !reflect.DeepEqual(r.Header, h.header):
			t.Fatalf("header %v, net/http %v", h.header, r.Header)
		case r.Close || r.ContentLength != 0:
			t.Fatalf("net/http reads close=%v length=%d", r.Close, r.ContentLength)
		}
	})
}
