package transport

import (
	"net/http"
	"strings"
)

// IsUpgradeRequest reports whether h asks for a WebSocket upgrade: an
// Upgrade field whose comma-separated tokens include "websocket", case
// aside, in any of its lines (RFC 6455 section 4.2.1; the field is a
// token list, RFC 9110 section 7.8). Front-ends and middleware use it to
// route a request before the Upgrader checks the handshake in full.
func IsUpgradeRequest(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		if HasToken(v, "websocket") {
			return true
		}
	}
	return false
}

// HasToken reports whether the comma-separated field value v lists tok,
// case aside (Connection: close, Upgrade: websocket).
func HasToken(v, tok string) bool {
	for item := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.Trim(item, " \t"), tok) {
			return true
		}
	}
	return false
}
