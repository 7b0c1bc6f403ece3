package console

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Event is one publication as the event stream shows it.
type Event struct {
	T        int64  `json:"t"` // unix milliseconds, when the console saw it
	Protocol string `json:"protocol"`
	App      string `json:"app"` // the hub namespace: a Pusher app id, "damon", "dcl", "talo/<game>"
	Channel  string `json:"channel"`
	Event    string `json:"event"`
	Data     string `json:"data"`  // shortened to maxShownData bytes
	Bytes    int    `json:"bytes"` // the whole payload
	Binary   bool   `json:"binary,omitempty"`
	// Except is the connection key the publication skips (a client
	// event's sender, a REST call's socket_id).
	Except string `json:"except,omitempty"`
}

const (
	maxShownData  = 2048
	maxShownBytes = 64 // of a binary payload, in hex
	// damonEventHeader is the 5-byte header Damon puts before an EVENT
	// document (internal/protocol/damon/fanout.go): 0x00 and an offset.
	damonEventHeader = 5
)

// describe turns a publication, in its protocol's wire format, into an
// Event. Pusher and Talo messages are JSON objects with "event" (Talo:
// "res") and "data"; Damon's are JSON, EVENTs behind a 5-byte header;
// ws-room's are binary protobuf, shown as hex. Anything else is shown as
// text.
func describe(protocol string, p engine.Publication) Event {
	ev := Event{Protocol: protocol, App: p.Namespace, Channel: p.Channel, Bytes: len(p.Payload), Except: p.ExcludeConn}
	body := p.Payload
	if p.Binary {
		ev.Binary = true
		ev.Event = "(binary)"
		ev.Data = hex.EncodeToString(body[:min(len(body), maxShownBytes)])
		return ev
	}
	if len(body) >= damonEventHeader && body[0] == 0 {
		body = body[damonEventHeader:]
	}
	var doc struct {
		Event json.RawMessage `json:"event"`
		Res   json.RawMessage `json:"res"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		ev.Data = shorten(string(body))
		return ev
	}
	for _, name := range []json.RawMessage{doc.Event, doc.Res} {
		var s string
		if json.Unmarshal(name, &s) == nil && s != "" {
			ev.Event = s
			break
		}
	}
	var s string
	if json.Unmarshal(doc.Data, &s) == nil {
		ev.Data = shorten(s) // Pusher's data is a string holding JSON
	} else {
		ev.Data = shorten(string(doc.Data))
	}
	return ev
}

// shorten cuts s to maxShownData bytes without splitting a character and
// makes it valid UTF-8 (the feed is JSON).
func shorten(s string) string {
	if len(s) > maxShownData {
		cut := maxShownData
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Filter selects the events a viewer sees. Each field is empty (any), a
// value (exactly), or a value ending in * (anything starting with it).
type Filter struct {
	App      string `json:"app"`
	Channel  string `json:"channel"`
	Event    string `json:"event"`
	Protocol string `json:"protocol"`
}

// maxFilterBytes bounds one filter value (a channel name is at most 200).
const maxFilterBytes = 256

var errFilter = errors.New("bad filter")

// ParseFilter reads a feed request's query: app, channel, event and
// protocol, each at most once, each valid UTF-8 of at most 256 bytes with
// no control characters. Other parameters are ignored.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for _, field := range []struct {
		key string
		dst *string
	}{{"app", &f.App}, {"channel", &f.Channel}, {"event", &f.Event}, {"protocol", &f.Protocol}} {
		key, dst := field.key, field.dst
		vs := q[key]
		if len(vs) == 0 {
			continue
		}
		if len(vs) > 1 {
			return Filter{}, fmt.Errorf("%w: %s given %d times", errFilter, key, len(vs))
		}
		v := vs[0]
		if len(v) > maxFilterBytes {
			return Filter{}, fmt.Errorf("%w: %s longer than %d bytes", errFilter, key, maxFilterBytes)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Filter{}, fmt.Errorf("%w: %s is not printable UTF-8", errFilter, key)
		}
		if i := strings.IndexByte(v, '*'); i >= 0 && i != len(v)-1 {
			return Filter{}, fmt.Errorf("%w: %s: * may only end a value", errFilter, key)
		}
		*dst = v
	}
	return f, nil
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *Event) bool {
	return matchOne(f.App, ev.App) && matchOne(f.Channel, ev.Channel) &&
		matchOne(f.Event, ev.Event) && matchOne(f.Protocol, ev.Protocol)
}

func matchOne(want, got string) bool {
	if want == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(got, prefix)
	}
	return want == got
}
