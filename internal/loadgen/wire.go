package loadgen

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Pusher event names the generator reacts to.
const (
	evConnEstablished = "pusher:connection_established"
	evError           = "pusher:error"
	evPing            = "pusher:ping"
	evPong            = "pusher:pong"
	evSubSucceeded    = "pusher_internal:subscription_succeeded"
	evSubError        = "pusher:subscription_error"
	evMemberAdded     = "pusher_internal:member_added"
	evMemberRemoved   = "pusher_internal:member_removed"

	// benchEvent is the name of every event the generator publishes over
	// HTTP; benchClientEvent is its client-event counterpart.
	benchEvent       = "sb-bench"
	benchClientEvent = "client-sb-bench"
)

// The stamp is how a delivery carries its step, sequence number and
// scheduled send time (ns since the run's epoch): a JSON object
// {"sbt":[step,seq,ns]}. Servers forward event data verbatim (usually as a
// JSON-encoded string, so the quotes arrive escaped), and presence servers
// forward user_info inside member_added, so the receiver scans raw frame
// bytes for the marker instead of decoding JSON twice per delivery.
var stampMarker = []byte("sbt")

// appendStamp appends {"sbt":[step,seq,ns]} plus optional padding so the
// whole object is about padTo bytes.
func appendStamp(dst []byte, step int, seq int64, ns int64, padTo int) []byte {
	start := len(dst)
	dst = append(dst, `{"sbt":[`...)
	dst = strconv.AppendInt(dst, int64(step), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, ns, 10)
	dst = append(dst, ']')
	if pad := padTo - (len(dst) - start) - len(`,"pad":""}`); pad > 0 {
		dst = append(dst, `,"pad":"`...)
		for range pad {
			dst = append(dst, 'x')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// parseStamp finds the first stamp in msg. It tolerates the stamp being
// JSON-escaped (`\"sbt\":[…]`) or not, and whitespace after separators.
func parseStamp(msg []byte) (step int, seq int64, ns int64, ok bool) {
	for off := 0; ; {
		i := bytes.Index(msg[off:], stampMarker)
		if i < 0 {
			return 0, 0, 0, false
		}
		p := off + i + len(stampMarker)
		off = p
		// Expect  \" : [  in some escaping; anything else is a false hit
		// (e.g. a user id containing "sbt").
		j := p
		sawBracket := false
		for j < len(msg) && j-p < 8 {
			c := msg[j]
			if c == '\\' || c == '"' || c == ':' || c == ' ' {
				j++
				continue
			}
			if c == '[' && !sawBracket {
				sawBracket = true
				j++
				continue
			}
			break
		}
		if !sawBracket {
			continue
		}
		var vals [3]int64
		n := 0
		for n < 3 {
			v, k, good := parseInt(msg, j)
			if !good {
				break
			}
			vals[n] = v
			n++
			j = skipSpaces(msg, k)
			if n < 3 {
				if j >= len(msg) || msg[j] != ',' {
					break
				}
				j = skipSpaces(msg, j+1)
			}
		}
		if n == 3 {
			return int(vals[0]), vals[1], vals[2], true
		}
	}
}

// parseInt parses a non-negative or negative decimal at msg[i:], returning
// the value and the index after it.
func parseInt(msg []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(msg) && msg[i] == '-' {
		neg = true
		i++
	}
	start := i
	var v int64
	for i < len(msg) && msg[i] >= '0' && msg[i] <= '9' && i-start < 19 {
		v = v*10 + int64(msg[i]-'0')
		i++
	}
	if i == start {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

func skipSpaces(msg []byte, i int) int {
	for i < len(msg) && (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\n' || msg[i] == '\r') {
		i++
	}
	return i
}

// topLevelString returns the raw (still-escaped) value of a top-level string
// field of a JSON object. It tracks nesting and string state, so a key of the
// same name inside "data" is not mistaken for the envelope's. It is the hot
// path for every received frame, hence no encoding/json.
func topLevelString(msg []byte, key string) ([]byte, bool) {
	depth := 0
	i := 0
	for i < len(msg) {
		c := msg[i]
		switch c {
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case '"':
			end := stringEnd(msg, i)
			if end < 0 {
				return nil, false
			}
			if depth == 1 && end-i-1 == len(key) && string(msg[i+1:end]) == key {
				j := skipSpaces(msg, end+1)
				if j < len(msg) && msg[j] == ':' {
					j = skipSpaces(msg, j+1)
					if j < len(msg) && msg[j] == '"' {
						vend := stringEnd(msg, j)
						if vend < 0 {
							return nil, false
						}
						return msg[j+1 : vend], true
					}
					return nil, false
				}
			}
			i = end + 1
		default:
			i++
		}
	}
	return nil, false
}

// stringEnd returns the index of the closing quote of the JSON string that
// opens at msg[i], or -1.
func stringEnd(msg []byte, i int) int {
	for j := i + 1; j < len(msg); j++ {
		switch msg[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// envelope is the slow-path decoding of a Pusher message, used for the rare
// control events (handshake, errors) where clarity beats speed.
type envelope struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// dataObject decodes data that may be an object or a JSON-encoded string
// holding an object (servers differ, see pusher.md §1.2).
func (e envelope) dataObject(v any) error {
	d := bytes.TrimSpace(e.Data)
	if len(d) > 0 && d[0] == '"' {
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return err
		}
		d = []byte(s)
	}
	if len(d) == 0 {
		return nil
	}
	return json.Unmarshal(d, v)
}

type establishedData struct {
	SocketID        string `json:"socket_id"`
	ActivityTimeout int    `json:"activity_timeout"`
}

type errorData struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
	// soketi's pusher:subscription_error fields
	Type   string `json:"type"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func (e errorData) String() string {
	switch {
	case e.Message != "" && e.Code != nil:
		return strconv.Itoa(*e.Code) + " " + e.Message
	case e.Message != "":
		return e.Message
	case e.Error != "":
		return e.Type + " " + strconv.Itoa(e.Status) + " " + e.Error
	}
	return "unknown error"
}

// subscribeMsg builds a pusher:subscribe message. auth and channelData are
// omitted when empty.
func subscribeMsg(channel, auth, channelData string) []byte {
	d := map[string]string{"channel": channel}
	if auth != "" {
		d["auth"] = auth
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	b, _ := json.Marshal(struct {
		Event string            `json:"event"`
		Data  map[string]string `json:"data"`
	}{"pusher:subscribe", d})
	return b
}

func unsubscribeMsg(channel string) []byte {
	b, _ := json.Marshal(struct {
		Event string            `json:"event"`
		Data  map[string]string `json:"data"`
	}{"pusher:unsubscribe", map[string]string{"channel": channel}})
	return b
}

var (
	pingMsg = []byte(`{"event":"pusher:ping","data":{}}`)
	pongMsg = []byte(`{"event":"pusher:pong","data":{}}`)
)

// clientEventMsg builds {"event":"client-sb-bench","channel":…,"data":{stamp}}.
// Client events carry data as an object, as pusher-js sends it.
func clientEventMsg(dst []byte, channel string, step int, seq, ns int64, padTo int) []byte {
	dst = append(dst, `{"event":"`+benchClientEvent+`","channel":`...)
	dst = strconv.AppendQuote(dst, channel)
	dst = append(dst, `,"data":`...)
	dst = appendStamp(dst, step, seq, ns, padTo)
	return append(dst, '}')
}
