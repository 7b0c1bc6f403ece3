package wsaccept

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// head is a WebSocket upgrade request's head as net/http would have read
// it, parsed by parseHead.
type head struct {
	target string // the request-target, origin form
	url    *url.URL
	host   string
	header http.Header
}

// headEnd returns the length of the request head in b, through the first
// empty line as net/http finds it (lines may end in LF alone there; such a
// head is then refused by parseHead and goes to net/http), or -1 while it
// is incomplete.
func headEnd(b []byte) int {
	for i := 0; ; {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return -1
		}
		i += nl + 1 // the start of the next line
		if rest := b[i:]; len(rest) > 0 && rest[0] == '\n' {
			return i + 1
		} else if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return i + 2
		}
	}
}

// parseHead parses s, one complete request head ending in a blank line,
// when it is a WebSocket upgrade in the shape every client here sends:
//
//	GET /origin-form?query HTTP/1.1
//	Name: value              (names [A-Za-z0-9-], values printable ASCII or tab)
//	Host: exactly one, of host characters
//	Upgrade: websocket
//
// Everything else reports ok false and goes to net/http unchanged: other
// methods and versions, folded lines, bare LFs, a body (Content-Length,
// Transfer-Encoding), Expect, "Connection: close", bytes outside those
// sets. The accepted set is a strict subset of what net/http accepts, and
// for it the result is what net/http's own reading gives (the same
// Header, Host, URL and RequestURI); FuzzParseHead checks both claims
// against http.ReadRequest. Every string in the result is a substring of
// s, so a request costs one copy of its head.
func parseHead(s string) (h head, ok bool) {
	line, rest, ok := strings.Cut(s, "\r\n")
	if !ok {
		return head{}, false
	}
	target, ok := strings.CutPrefix(line, "GET ")
	if !ok {
		return head{}, false
	}
	target, ok = strings.CutSuffix(target, " HTTP/1.1")
	if !ok || target == "" || target[0] != '/' || !visibleASCII(target) {
		return head{}, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return head{}, false
	}
	// One backing array for every value, as textproto does: a header
	// costs its map entry, not a slice of its own.
	vals := make([]string, 0, max(strings.Count(rest, "\r\n")-1, 0))
	hdr := make(http.Header, cap(vals))
	upgrade := false
	for {
		line, rest, ok = strings.Cut(rest, "\r\n")
		if !ok {
			return head{}, false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !tokenName(name) {
			return head{}, false
		}
		value = strings.Trim(value, " \t")
		if !fieldValue(value) {
			return head{}, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Content-Length", "Transfer-Encoding", "Expect", "Trailer":
			return head{}, false // a body, or a dialogue net/http handles
		case "Connection":
			if transport.HasToken(value, "close") {
				return head{}, false
			}
		case "Upgrade":
			upgrade = upgrade || transport.HasToken(value, "websocket")
		}
		if old, seen := hdr[key]; seen {
			hdr[key] = append(old, value)
			continue
		}
		vals = append(vals, value)
		hdr[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if rest != "" || !upgrade {
		return head{}, false
	}
	hosts := hdr["Host"]
	if len(hosts) != 1 || !hostChars(hosts[0]) {
		return head{}, false
	}
	delete(hdr, "Host")
	// net/http's fixPragmaCacheControl.
	if p, ok := hdr["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return head{target: target, url: u, host: hosts[0], header: hdr}, true
}

// visibleASCII: every byte is 0x21-0x7e.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// tokenName: a non-empty header name of letters, digits and '-'.
func tokenName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// fieldValue: printable ASCII and tabs only.
func fieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// hostChars: a non-empty Host of the characters a host name, an IPv4 or
// bracketed IPv6 address and a port use.
func hostChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && strings.IndexByte("-.:[]_", c) < 0 {
			return false
		}
	}
	return true
}
