package pusher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

// clientEvent relays a client- event to the channel's other subscribers.
// Every refusal is a pusher:error on an open socket; only the rate limit
// carries a code (4301), as Pusher does. The envelope's spans point into
// the received frame; the one copy is the outgoing frame, built in a
// buffer of its final size and shared by every recipient.
//
// BenchmarkPusherPathClientEvent (10-member private channel, 100-byte
// data; go test -run '^$' -bench PusherPathClientEvent -benchmem -count 6
// ./internal/protocol/pusher/): 19 -> 8-9 allocs/op for the process
// (draining clients and write loops included); of those left, the frame
// and the hub's Message are this path's. See docs/performance.md.
func (ss *session) clientEvent(env rawEnvelope) {
	app := ss.app
	if !app.ClientEvents {
		ss.sendError(0, "client_events_disabled", "To send client events, you must enable this feature for the app.", string(env.channel))
		return
	}
	if !ss.takeToken() {
		ss.sendError(4301, "client_event_rate_limit", fmt.Sprintf(
			"Client event rejected due to rate limit (%d per second).", app.Limits.ClientEventsPerSecond), string(env.channel))
		return
	}
	if len(env.event) > app.Limits.MaxEventNameLength {
		ss.sendError(0, "event_name_too_long", fmt.Sprintf("Client event rejected - event name over %d characters.", app.Limits.MaxEventNameLength), string(env.channel))
		return
	}
	if len(env.channel) == 0 {
		ss.sendError(0, "client_event_no_channel", "Client event rejected - no channel given.", "")
		return
	}
	// One lookup serves the type check and the membership check: a
	// subscription's kind is its name's (subscribe.go classifies it).
	ss.mu.Lock()
	sub := ss.subs.getBytes(env.channel)
	ss.mu.Unlock()
	var kind Channel
	if sub != nil {
		kind = sub.kind
	} else {
		kind = ClassifyChannel(string(env.channel))
	}
	if kind.Kind != Private && kind.Kind != Presence {
		ss.sendError(0, "client_event_channel_type", "Client event rejected - only supported on private and presence channels", string(env.channel))
		return
	}
	if len(env.data) > app.Limits.MaxEventBytes {
		ss.sendError(0, "client_event_too_big", fmt.Sprintf("Client event rejected - data over %d bytes.", app.Limits.MaxEventBytes), string(env.channel))
		return
	}
	if sub == nil {
		ch := string(env.channel)
		ss.sendError(0, "client_event_not_subscribed", "Client event rejected - not subscribed to channel "+ch, ch)
		return
	}
	data := bytes.TrimSpace(env.data)
	if len(data) == 0 {
		data = emptyObject
	}
	ss.publishInternal(sub.name, clientEventFrame(env.event, sub.name, data, sub.member), ss.id)
	// Only with webhooks on: dataAsString copies the data, 94 ns and 112 B
	// for 100 bytes, 1.4 µs for 2 KB (one run, go test -bench).
	if ss.srv.webhooksOn(app) {
		ss.srv.emitWebhook(app, webhook.Event{
			Name: "client_event", Channel: sub.name, Event: string(env.event),
			Data: dataAsString(data), SocketID: ss.id, UserID: sub.member,
		})
	}
}

var emptyObject = []byte("{}")

// clientEventFrame is {"event":..,"channel":..,"data":<data as sent>} with
// "user_id" on presence channels, in one allocation of the final size
// (when no name needs escaping).
func clientEventFrame(event []byte, channel string, data []byte, userID string) []byte {
	n := len(`{"event":"","channel":"","data":}`) + len(event) + len(channel) + len(data)
	if userID != "" {
		n += len(`,"user_id":""`) + len(userID)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, event)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	if userID != "" {
		b = append(b, `,"user_id":`...)
		b = appendJSONString(b, userID)
	}
	return append(b, '}')
}

// dataAsString is the webhook form of client event data: a string as-is,
// anything else as its JSON text.
func dataAsString(raw []byte) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// takeToken is a token bucket of ClientEventsPerSecond with the same
// burst; only the reader goroutine calls it.
func (ss *session) takeToken() bool {
	rate := float64(ss.app.Limits.ClientEventsPerSecond)
	if rate <= 0 {
		return true
	}
	now := ss.srv.opts.Now().UnixNano()
	elapsed := time.Duration(max(0, now-ss.tokensAt)) // wall clock: never negative after a step back
	ss.tokens = min(rate, ss.tokens+elapsed.Seconds()*rate)
	ss.tokensAt = now
	if ss.tokens < 1 {
		return false
	}
	ss.tokens--
	return true
}

// throttle allows one event per key per interval (subscription_count on
// busy channels).
type throttle struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[[2]string]time.Time
}

func (t *throttle) allow(app, channel string) bool {
	now := time.Now()
	k := [2]string{app, channel}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[[2]string]time.Time{}
	}
	if now.Sub(t.last[k]) < t.interval {
		return false
	}
	if len(t.last) > 10000 { // forget quiet channels rather than grow without bound
		for key, at := range t.last {
			if now.Sub(at) >= t.interval {
				delete(t.last, key)
			}
		}
	}
	t.last[k] = now
	return true
}
