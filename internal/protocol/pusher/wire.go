package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Envelope is one client->server message. Data stays raw: for pusher:
// events it is decoded per event, for client events it is forwarded as the
// client wrote it.
type Envelope struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

var (
	errNotObject = errors.New("message is not a JSON object")
	errNoEvent   = errors.New("message has no event")
)

// DecodeEnvelope parses a client message. Anything but a JSON object with
// a string "event" is an error.
func DecodeEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return e, errNotObject
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, err
	}
	if e.Event == "" {
		return e, errNoEvent
	}
	return e, nil
}

// decodeData decodes a pusher: event's data, accepting both an object and
// a JSON string holding one (some clients double-encode what they send).
func decodeData(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("data must be an object")
	}
	return json.Unmarshal(raw, v)
}

// eventWriter builds one server->client message. Pusher's clients expect
// "data" of pusher: and pusher_internal: events as a JSON-encoded string
// (double encoding); published events carry data exactly as given.
type eventWriter struct{ b []byte }

func newEvent(event string) *eventWriter {
	w := &eventWriter{b: make([]byte, 0, 128)}
	w.b = append(w.b, `{"event":`...)
	w.b = appendJSONString(w.b, event)
	return w
}

func (w *eventWriter) channel(name string) *eventWriter {
	w.b = append(w.b, `,"channel":`...)
	w.b = appendJSONString(w.b, name)
	return w
}

// dataString sets data to a JSON string holding s.
func (w *eventWriter) dataString(s string) *eventWriter {
	w.b = append(w.b, `,"data":`...)
	w.b = appendJSONString(w.b, s)
	return w
}

// dataRaw sets data to already-encoded JSON.
func (w *eventWriter) dataRaw(raw []byte) *eventWriter {
	w.b = append(w.b, `,"data":`...)
	w.b = append(w.b, raw...)
	return w
}

// dataJSON sets data to the JSON encoding of v, as a string (double encoded).
func (w *eventWriter) dataJSON(v any) *eventWriter {
	inner, err := json.Marshal(v)
	if err != nil {
		inner = []byte("{}")
	}
	return w.dataString(string(inner))
}

func (w *eventWriter) bytes() []byte { return append(w.b, '}') }

// errorEvent is pusher:error. Pusher's clients read data as an object with
// code (null for non-fatal errors) and message.
func errorEvent(code int, message string, channel string) []byte {
	var d []byte
	d = append(d, `{"code":`...)
	if code == 0 {
		d = append(d, "null"...)
	} else {
		d = strconv.AppendInt(d, int64(code), 10)
	}
	d = append(d, `,"message":`...)
	d = appendJSONString(d, message)
	d = append(d, '}')
	w := newEvent("pusher:error")
	if channel != "" {
		w.channel(channel)
	}
	return w.dataRaw(d).bytes()
}

// appendJSONString appends s as a JSON string. Unlike encoding/json it
// leaves <, > and & alone (Pusher does not escape them) and turns invalid
// UTF-8 into U+FFFD.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript string
		// literals; escaping them is harmless and safer for browsers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func decodeRune[T string | []byte](s T) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 1
}
