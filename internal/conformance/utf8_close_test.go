package conformance

import (
	"fmt"
	"strings"
	"testing"
)

// utf8Samples mirror the Autobahn 6.x groups: valid texts must arrive whole
// (however they are fragmented), invalid ones close with 1007.
var (
	validUTF8 = []struct{ autobahn, name, text string }{
		{"6.2.1", "multi-byte text", "Hello-µ@ßöäüàá-UTF-8!!"},
		{"6.5.1", "Greek", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
		{"6.7.1", "first 1-byte sequence", "\x00"},
		{"6.7.2", "first 2-byte sequence", "\xc2\x80"},
		{"6.7.3", "first 3-byte sequence", "\xe0\xa0\x80"},
		{"6.7.4", "first 4-byte sequence", "\xf0\x90\x80\x80"},
		{"6.9.1", "last 1-byte sequence", "\x7f"},
		{"6.9.2", "last 2-byte sequence", "\xdf\xbf"},
		{"6.9.3", "last 3-byte sequence", "\xef\xbf\xbf"},
		{"6.9.4", "last 4-byte sequence (U+10FFFF)", "\xf4\x8f\xbf\xbf"},
		{"6.11.1", "U+D7FF", "\xed\x9f\xbf"},
		{"6.11.2", "U+E000", "\xee\x80\x80"},
		{"6.11.3", "U+FFFD", "\xef\xbf\xbd"},
		{"6.22.1", "noncharacter U+FFFE", "\xef\xbf\xbe"},
		{"6.22.34", "noncharacter U+10FFFF", "\xf4\x8f\xbf\xbf"},
		{"6.23.1", "U+FEFF", "\xef\xbb\xbf"},
	}
	invalidUTF8 = []struct{ autobahn, name, text string }{
		{"6.3.1", "Greek with an invalid sequence", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"},
		{"6.6.1", "lone start byte", "\xce"},
		{"6.6.3", "truncated 3-byte sequence", "\xce\xba\xe1"},
		{"6.8.1", "5-byte sequence", "\xf8\x88\x80\x80\x80"},
		{"6.8.2", "6-byte sequence", "\xfc\x84\x80\x80\x80\x80"},
		{"6.10.1", "U+110000", "\xf4\x90\x80\x80"},
		{"6.10.2", "4-byte sequence past U+10FFFF", "\xf7\xbf\xbf\xbf"},
		{"6.12.1", "unexpected continuation byte", "\x80"},
		{"6.12.8", "run of continuation bytes", "\x80\xbf\x80\xbf\x80\xbf\x80"},
		{"6.13.1", "lonely start bytes", "\xc0 \xc1 \xc2 "},
		{"6.14.1", "2-byte sequence missing its last byte", "\xc0"},
		{"6.14.3", "4-byte sequence missing its last byte", "\xf0\x80\x80"},
		{"6.15.1", "concatenated incomplete sequences", "\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"},
		{"6.16.1", "impossible byte FE", "\xfe"},
		{"6.16.3", "impossible bytes FEFEFFFF", "\xfe\xfe\xff\xff"},
		{"6.17.1", "overlong /", "\xc0\xaf"},
		{"6.17.3", "overlong / in 4 bytes", "\xf0\x80\x80\xaf"},
		{"6.18.1", "maximum overlong 2-byte", "\xc1\xbf"},
		{"6.19.1", "overlong NUL", "\xc0\x80"},
		{"6.20.1", "lone high surrogate U+D800", "\xed\xa0\x80"},
		{"6.20.7", "lone low surrogate U+DFFF", "\xed\xbf\xbf"},
		{"6.21.1", "surrogate pair", "\xed\xa0\x80\xed\xb0\x80"},
	}
)

func TestUTF8(t *testing.T) {
	cases := []wsCase{
		{autobahn: "6.1.1", name: "empty text frame", run: func(c *conn) {
			if c.ep.app == nil {
				c.t.Skip("a message here must be the ws-room handshake")
			}
			c.send(text(true, nil))
			c.expectAlive()
		}},
		{autobahn: "6.1.2, 6.1.3", name: "empty fragments around a request", needsApp: true, run: func(c *conn) {
			c.send(text(false, nil), cont(false, nil), cont(false, c.ep.app.padded(c.ep.app.minPadded)), cont(true, nil))
			c.expectReply()
		}},
	}
	for _, v := range validUTF8 {
		cases = append(cases,
			wsCase{autobahn: v.autobahn, name: v.name, needsApp: true, run: func(c *conn) {
				c.send(text(true, c.ep.app.carrying(v.text)))
				c.expectReply()
			}},
			wsCase{autobahn: v.autobahn + " (6.2.3)", name: v.name + ", one byte per fragment", needsApp: true, run: func(c *conn) {
				c.send(fragmented(OpText, c.ep.app.carrying(v.text), 1)...)
				c.expectReply()
			}},
		)
	}
	for _, v := range invalidUTF8 {
		cases = append(cases,
			wsCase{autobahn: v.autobahn, name: v.name, run: func(c *conn) {
				c.send(text(true, []byte(v.text)))
				c.expectClose(1007)
			}},
			wsCase{autobahn: v.autobahn + " (6.3.2)", name: v.name + ", one byte per fragment", run: func(c *conn) {
				c.send(fragmented(OpText, []byte(v.text), 1)...)
				c.expectClose(1007)
			}},
		)
	}
	cases = append(cases,
		wsCase{autobahn: "6.4.1, 6.4.2", name: "invalid sequence in the first fragment, valid ones after", run: func(c *conn) {
			c.send(text(false, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")),
				cont(false, []byte("\xf4\x90\x80\x80")), cont(true, []byte("\x65\x64\x69\x74\x65\x64")))
			c.expectClose(1007)
		}},
		wsCase{autobahn: "6.4.3, 6.4.4", name: "invalid sequence split over fragments, 1-byte chunks", run: func(c *conn) {
			c.sendChunked(1, text(false, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4")),
				cont(false, []byte("\x90\x80\x80")), cont(true, []byte("\x65\x64\x69\x74\x65\x64")))
			c.expectClose(1007)
		}},
		wsCase{autobahn: "6.2.2", name: "multi-byte characters split across fragments", needsApp: true, run: func(c *conn) {
			p := c.ep.app.carrying("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
			i := strings.Index(string(p), "\xe1") + 1 // inside the 3-byte character
			c.send(text(false, p[:i]), cont(true, p[i:]))
			c.expectReply()
		}},
	)
	runCases(t, cases)
}

func TestClose(t *testing.T) {
	cases := []wsCase{
		{autobahn: "7.1.1", name: "message, then a clean close", needsApp: true, run: func(c *conn) {
			c.send(text(true, c.ep.app.padded(c.ep.app.minPadded)))
			c.expectReply()
			c.send(closeCode(1000))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.1.2", name: "two close frames", run: func(c *conn) {
			c.send(closeCode(1000), closeCode(1000))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.1.3", name: "ping after close is not answered", run: func(c *conn) {
			c.send(closeCode(1000), ping([]byte("after close")))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.1.4", name: "message after close is ignored", run: func(c *conn) {
			c.send(closeCode(1000), text(true, []byte("after close")))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.1.5", name: "close in the middle of a fragmented message", run: func(c *conn) {
			c.send(text(false, []byte("fragment1")), closeCode(1000), cont(true, []byte("fragment2")))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.1.6", name: "large message, then close", needsApp: true, run: func(c *conn) {
			c.send(text(true, c.ep.app.padded(c.ep.app.maxMessage)), closeCode(1000))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.3.1", name: "close without a body", run: func(c *conn) {
			c.send(closeFrame(nil))
			c.expectCloseEcho(0, 1000)
		}},
		{autobahn: "7.3.2", name: "close with a 1-byte body", run: func(c *conn) {
			c.send(closeFrame([]byte{0x03}))
			c.expectClose(1002)
		}},
		{autobahn: "7.3.3", name: "close with code 1000, no reason", run: func(c *conn) {
			c.send(closeCode(1000))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.3.4", name: "close with code 1000 and a reason", run: func(c *conn) {
			c.send(closeFrame(CloseBody(1000, "Hello World!")))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.3.5", name: "close with a 123-byte reason", run: func(c *conn) {
			c.send(closeFrame(CloseBody(1000, strings.Repeat("*", 123))))
			c.expectCloseEcho(1000)
		}},
		{autobahn: "7.3.6", name: "close with a 124-byte reason (126-byte control frame)", run: func(c *conn) {
			c.send(closeFrame(CloseBody(1000, strings.Repeat("*", 124))))
			c.expectClose(1002)
		}},
		{autobahn: "7.5.1", name: "close reason not UTF-8", run: func(c *conn) {
			c.send(closeFrame(CloseBody(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")))
			c.expectClose(1007)
		}},
		{autobahn: "—", name: "peer drops TCP without a close frame", run: func(c *conn) {
			_ = c.CloseWrite()
			c.expectEOFOrClose()
		}},
	}
	for i, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, wsCase{autobahn: fmt.Sprintf("7.7.%d", i+1), name: fmt.Sprintf("valid close code %d is echoed", code), run: func(c *conn) {
			c.send(closeCode(code))
			c.expectCloseEcho(code)
		}})
	}
	for i, code := range []uint16{0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, wsCase{autobahn: fmt.Sprintf("7.9.%d", i+1), name: fmt.Sprintf("invalid close code %d", code), run: func(c *conn) {
			c.send(closeCode(code))
			c.expectClose(1002)
		}})
	}
	runCases(t, cases)
}

// expectEOFOrClose: after the client's FIN the server may send a close
// frame first; either way the TCP connection must end.
func (c *conn) expectEOFOrClose() {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			if isEOF(err) {
				return
			}
			c.t.Fatalf("after the client's FIN: %v, want the server to close", err)
		}
		if f.Op == OpClose {
			c.expectEOF()
			return
		}
	}
}
