package wire

import "strconv"

// Server-built messages. The reference builds them with
// sendPayload(opcode, data) → JSON.stringify({op, event, data, intent}),
// which drops the undefined keys, so they are exactly these bytes (observed
// on the wire, spec §4). They are constants so nobody can mutate them;
// append(buf, wire.MsgPing...) and io.WriteString do not allocate.
const (
	MsgIdentifyFailed = `{"op":2,"data":"IDENTIFY_FAILED"}`
	MsgMessageTooBig  = `{"op":2,"data":"MESSAGE_TOO_BIG"}`
	MsgPingTimeout    = `{"op":2,"data":"PING_TIMEOUT"}`
	MsgPing           = `{"op":3}`
	MsgPong           = `{"op":4}`
)

// AppendIdentifyReply appends the IDENTIFY success reply
// {"op":1,"data":{"id":"<uuid>","ping":<ms>}}. pingMS is the heartbeat
// interval in milliseconds, printed as JSON.stringify prints the configured
// number (config.json's 3e4 goes out as 30000).
func AppendIdentifyReply(dst []byte, id UUID, pingMS int64) []byte {
	dst = append(dst, `{"op":1,"data":{"id":"`...)
	dst = append(dst, id[:]...)
	dst = append(dst, `","ping":`...)
	dst = strconv.AppendInt(dst, pingMS, 10)
	return append(dst, `}}`...)
}

// AppendDisconnect appends {"op":2,"data":<reason>} for any reason string
// (the reference's default is "NO_REASON"); the Msg constants cover the three
// reasons the server sends.
func AppendDisconnect(dst []byte, reason string) []byte {
	dst = append(dst, `{"op":2,"data":`...)
	dst = append(dst, '"')
	for _, r := range reason { // invalid UTF-8 yields U+FFFD, as Node's utf8 decoding would
		dst = appendUnit(dst, r, true)
	}
	return append(dst, '"', '}')
}
