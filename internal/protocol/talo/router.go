package talo

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// Socket requests (spec section 3): exactly three.
const (
	reqIdentify  = "v1.players.identify"
	reqMessage   = "v1.channels.message"
	reqBroadcast = "v1.player-relationships.broadcast"

	heartbeat = "v1.heartbeat"
)

// Socket error codes and their exact messages (spec section 5).
const (
	errInvalidMessage     = "INVALID_MESSAGE"
	errRouting            = "ROUTING_ERROR"
	errInvalidSignature   = "INVALID_SIGNATURE"
	errNoPlayer           = "NO_PLAYER_FOUND"
	errMissingScopes      = "MISSING_ACCESS_KEY_SCOPES"
	errInvalidData        = "INVALID_MESSAGE_DATA"
	errListener           = "LISTENER_ERROR"
	errInvalidSocketToken = "INVALID_SOCKET_TOKEN"
	errInvalidSession     = "INVALID_SESSION_TOKEN"
	errRateLimit          = "RATE_LIMIT_EXCEEDED"
)

var errorMessages = map[string]string{
	errInvalidMessage:     "Invalid message request",
	errRouting:            "An error occurred while routing the message",
	errInvalidSignature:   "Invalid signature",
	errNoPlayer:           "You must identify a player before sending this request",
	errInvalidData:        "Invalid message data for request",
	errListener:           "An error occurred while processing the message",
	errInvalidSocketToken: "Invalid socket token",
	errInvalidSession:     "Invalid session token",
	errRateLimit:          "Rate limit exceeded",
}

// socketError is the data of a v1.error response; Cause is omitted when nil.
type socketError struct {
	Req       string  `json:"req"`
	Message   string  `json:"message"`
	ErrorCode string  `json:"errorCode"`
	Cause     *string `json:"cause,omitempty"`
}

func newSocketError(req, code string, cause *string) socketError {
	return socketError{Req: req, Message: errorMessages[code], ErrorCode: code, Cause: cause}
}

// listener describes one request: whether it needs an identified player
// and which key scopes.
type listener struct {
	requirePlayer bool
	scopes        []string
}

var listeners = map[string]listener{
	reqIdentify:  {requirePlayer: false, scopes: []string{"read:players"}},
	reqMessage:   {requirePlayer: true, scopes: []string{"write:gameChannels"}},
	reqBroadcast: {requirePlayer: true, scopes: []string{"write:playerBroadcasts"}},
}

// splitSignature separates "<signature>\n<json>" at the first newline;
// without one the whole frame is the JSON and the signature is missing.
func splitSignature(frame []byte) (sig string, body []byte) {
	if i := bytes.IndexByte(frame, '\n'); i >= 0 {
		return string(frame[:i]), frame[i+1:]
	}
	return "", frame
}

// envelopeResult is what decodeEnvelope found.
type envelopeResult struct {
	req  string
	data json.RawMessage // a JSON object
	err  *socketError
}

// decodeEnvelope parses {"req": <known request>, "data": <object>} the
// way the reference does: text that is not JSON is a ROUTING_ERROR (a
// SyntaxError is not a validation error there); JSON that is not such an
// envelope is INVALID_MESSAGE with the raw text as cause. Extra keys are
// allowed.
func decodeEnvelope(body []byte) envelopeResult {
	if !json.Valid(body) {
		e := newSocketError("unknown", errRouting, nil)
		return envelopeResult{err: &e}
	}
	invalid := func() envelopeResult {
		cause := string(body)
		e := newSocketError("unknown", errInvalidMessage, &cause)
		return envelopeResult{err: &e}
	}
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil || env == nil {
		return invalid()
	}
	var req string
	if json.Unmarshal(env["req"], &req) != nil || !isString(env["req"]) {
		return invalid()
	}
	if _, ok := listeners[req]; !ok {
		return invalid()
	}
	data := env["data"]
	if !isObject(data) {
		return invalid()
	}
	return envelopeResult{req: req, data: data}
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isObject(raw json.RawMessage) bool { return firstByte(raw) == '{' }
func isString(raw json.RawMessage) bool { return firstByte(raw) == '"' }
func isNumber(raw json.RawMessage) bool {
	b := firstByte(raw)
	return b == '-' || (b >= '0' && b <= '9')
}

// jsCause is JSON.stringify(data) for a parsed object: the compact form of
// what the client sent, keys in its order.
func jsCause(data json.RawMessage) *string {
	var buf bytes.Buffer
	if json.Compact(&buf, data) != nil {
		s := string(data)
		return &s
	}
	s := buf.String()
	return &s
}

// identifyData is v1.players.identify's data.
type identifyData struct {
	PlayerAliasID float64
	SocketToken   string
	SessionToken  string
}

// aliasKey is the alias id as JS prints the number ("1", "1.5").
func (d identifyData) aliasKey() string {
	return strconv.FormatFloat(d.PlayerAliasID, 'f', -1, 64)
}

// aliasID is the id when it is a whole number in range, else 0.
func (d identifyData) aliasID() int64 {
	f := d.PlayerAliasID
	if f != math.Trunc(f) || f < 1 || f > 1<<53 {
		return 0
	}
	return int64(f)
}

type messageData struct {
	ChannelID float64
	Message   string
}

type broadcastData struct {
	Message string
}

// fields decodes an object's keys (the last of duplicates wins, like JSON.parse).
func fields(data json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if !isString(raw) || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func num(raw json.RawMessage) (float64, bool) {
	var f float64
	if !isNumber(raw) || json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	return f, true
}

// decodeData validates a request's data like its zod schema; ok false is
// INVALID_MESSAGE_DATA.
func decodeData(req string, data json.RawMessage) (any, bool) {
	m, ok := fields(data)
	if !ok {
		return nil, false
	}
	switch req {
	case reqIdentify:
		var d identifyData
		if d.PlayerAliasID, ok = num(m["playerAliasId"]); !ok {
			return nil, false
		}
		if d.SocketToken, ok = str(m["socketToken"]); !ok {
			return nil, false
		}
		if raw, present := m["sessionToken"]; present {
			if d.SessionToken, ok = str(raw); !ok {
				return nil, false
			}
		}
		return d, true
	case reqMessage:
		ch, ok := fields(m["channel"])
		if !ok || !isObject(m["channel"]) {
			return nil, false
		}
		var d messageData
		if d.ChannelID, ok = num(ch["id"]); !ok {
			return nil, false
		}
		if d.Message, ok = str(m["message"]); !ok {
			return nil, false
		}
		return d, true
	case reqBroadcast:
		var d broadcastData
		if d.Message, ok = str(m["message"]); !ok {
			return nil, false
		}
		return d, true
	}
	return nil, false
}
