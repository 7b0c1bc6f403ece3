package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
)

// event is one validated event to trigger.
type event struct {
	name, data, socketID string
	channels             []string // unique, in request order
	info                 infoSet
}

// rawEvent is an event as sent, each field kept raw so that a wrong type
// gets an error naming the field rather than a generic decode error.
type rawEvent struct {
	Name     json.RawMessage `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channels json.RawMessage `json:"channels"`
	Channel  json.RawMessage `json:"channel"`
	SocketID json.RawMessage `json:"socket_id"`
	Info     json.RawMessage `json:"info"`
}

// limits returns the app's limits with the configured defaults for any
// left 0, so an App built without going through config still gets sane
// bounds.
func limits(app *pusher.App) config.AppLimits {
	return app.Limits.WithDefaults(false)
}

// events handles POST /apps/{id}/events.
func (a *API) events(req *request) (any, *apiError) {
	var raw rawEvent
	if len(bytes.TrimSpace(req.body)) > 0 && !scanRawEvent(req.body, &raw) {
		raw = rawEvent{}
		if aerr := decodeObject(req.body, &raw, "request body"); aerr != nil {
			return nil, aerr
		}
	}
	// Pusher lets POST parameters travel in the (signed) query string;
	// the body wins where both give a field.
	ev, aerr := buildEvent(raw, req.params, limits(req.app), topLevel)
	if aerr != nil {
		return nil, aerr
	}
	if err := a.b.Trigger(req.ctx, req.app, pusher.TriggerEvent{
		Name: ev.name, Data: ev.data, Channels: ev.channels, SocketID: ev.socketID,
	}); err != nil {
		return nil, backendError("trigger", err)
	}
	if len(ev.info) == 0 {
		return struct{}{}, nil
	}
	out := make(map[string]map[string]int, len(ev.channels))
	for _, ch := range ev.channels {
		attrs, aerr := a.countInfo(req, ch, ev.info)
		if aerr != nil {
			return nil, aerr
		}
		out[ch] = attrs
	}
	return map[string]any{"channels": out}, nil
}

// batchEvents handles POST /apps/{id}/batch_events. Every event is
// validated before any is triggered, so a 400 or 413 publishes nothing.
func (a *API) batchEvents(req *request) (any, *apiError) {
	var body struct {
		Batch json.RawMessage `json:"batch"`
	}
	items, scanned := scanBatch(req.body)
	if !scanned {
		if aerr := decodeObject(req.body, &body, "request body"); aerr != nil {
			return nil, aerr
		}
		if isNull(body.Batch) {
			return nil, errorf(http.StatusBadRequest, `missing "batch": the body must be {"batch":[{"name":...,"channel":...,"data":...},...]}`)
		}
		if err := json.Unmarshal(body.Batch, &items); err != nil {
			return nil, errorf(http.StatusBadRequest, `"batch" must be an array of event objects`)
		}
	}
	lim := limits(req.app)
	switch {
	case len(items) == 0:
		return nil, errorf(http.StatusBadRequest, `"batch" is empty: give at least one event`)
	case len(items) > lim.MaxBatchSize:
		return nil, errorf(http.StatusBadRequest, `"batch" has %d events, over the limit of %d per request`, len(items), lim.MaxBatchSize)
	}
	evs := make([]event, len(items))
	anyInfo := false
	for i, it := range items {
		where := batchPosition(i)
		var raw rawEvent
		if !scanRawEvent(it, &raw) {
			raw = rawEvent{}
			if aerr := decodeObject(it, &raw, where.String()+"event"); aerr != nil {
				return nil, aerr
			}
		}
		if !isNull(raw.Channels) {
			return nil, errorf(http.StatusBadRequest, `%sbatch events take one channel in "channel", not "channels"`, where)
		}
		if isNull(raw.Channel) {
			return nil, errorf(http.StatusBadRequest, `%smissing "channel"`, where)
		}
		ev, aerr := buildEvent(raw, nil, lim, where)
		if aerr != nil {
			return nil, aerr
		}
		evs[i] = ev
		anyInfo = anyInfo || len(ev.info) > 0
	}
	for i, ev := range evs {
		if err := a.b.Trigger(req.ctx, req.app, pusher.TriggerEvent{
			Name: ev.name, Data: ev.data, Channels: ev.channels, SocketID: ev.socketID,
		}); err != nil {
			return nil, backendError(fmt.Sprintf("trigger batch[%d]", i), err)
		}
	}
	if !anyInfo {
		return struct{}{}, nil
	}
	// Index-aligned with the request; events without info get {}.
	out := make([]map[string]int, len(evs))
	for i, ev := range evs {
		out[i] = map[string]int{}
		if len(ev.info) > 0 {
			attrs, aerr := a.countInfo(req, ev.channels[0], ev.info)
			if aerr != nil {
				return nil, aerr
			}
			out[i] = attrs
		}
	}
	return map[string]any{"batch": out}, nil
}

// countInfo returns the requested counts that apply to ch's type:
// user_count on presence channels, subscription_count on all channels
// (Pusher's REST reference lists it as applicable to all, and its own
// example shows both on a presence channel).
// Unlike GET /channels/{name}, a trigger is not refused for asking an
// attribute some of its channels lack: the event is already published.
func (a *API) countInfo(req *request, ch string, info infoSet) (map[string]int, *apiError) {
	presence := pusher.ClassifyChannel(ch).Kind == pusher.Presence
	wantUsers := presence && info.has(infoUserCount)
	wantSubs := info.has(infoSubscriptionCount)
	attrs := map[string]int{}
	if !wantUsers && !wantSubs {
		return attrs, nil
	}
	st, _, err := a.b.Channel(req.ctx, req.app, ch)
	if err != nil {
		return nil, backendError("channel stats", err)
	}
	if wantUsers {
		attrs[infoUserCount] = st.Users
	}
	if wantSubs {
		attrs[infoSubscriptionCount] = st.Subscriptions
	}
	return attrs, nil
}

// buildEvent validates one event. query, when not nil, supplies fields the
// body lacks. where prefixes messages (e.g. "batch[3]: ").
func buildEvent(raw rawEvent, query map[string]string, lim config.AppLimits, where position) (event, *apiError) {
	var ev event
	var aerr *apiError
	field := func(name string, r json.RawMessage, qkeys ...string) (string, bool) {
		if aerr != nil {
			return "", false
		}
		if !isNull(r) {
			s, err := jsonString(r)
			if err != nil {
				aerr = errorf(http.StatusBadRequest, "%s%q must be a string", where, name)
				return "", false
			}
			return s, true
		}
		for _, k := range qkeys {
			if v, ok := query[k]; ok {
				return v, true
			}
		}
		return "", false
	}

	name, hasName := field("name", raw.Name, "name")
	channel, hasChannel := field("channel", raw.Channel, "channel")
	socketID, _ := field("socket_id", raw.SocketID, "socket_id")
	info, _ := field("info", raw.Info, "info")
	if aerr != nil {
		return ev, aerr
	}
	data, hasData := query["data"]
	if !isNull(raw.Data) {
		hasData = true
		var err error
		if data, err = jsonString(raw.Data); err != nil {
			// Pusher's data is a string; SDKs for typed languages sometimes
			// send the object itself. Forward its JSON text unchanged
			// rather than refuse it: subscribers parse data either way.
			data = string(raw.Data)
		}
	}
	var channels []string
	var err error
	hasChannels := false
	if !isNull(raw.Channels) {
		hasChannels = true
		if channels, err = jsonStrings(raw.Channels); err != nil {
			return ev, errorf(http.StatusBadRequest, `%s"channels" must be an array of channel name strings`, where)
		}
	} else if v, ok := query["channels"]; ok {
		hasChannels, channels = true, []string{v}
	} else if v, ok := query["channels[]"]; ok {
		hasChannels, channels = true, []string{v}
	}

	switch {
	case !hasName || name == "":
		return ev, errorf(http.StatusBadRequest, `%smissing event name ("name")`, where)
	case !hasData:
		return ev, errorf(http.StatusBadRequest, `%smissing event data ("data")`, where)
	case hasChannels && hasChannel:
		return ev, errorf(http.StatusBadRequest, `%sgive either "channels" or "channel", not both`, where)
	case hasChannel:
		channels = []string{channel}
	case !hasChannels:
		return ev, errorf(http.StatusBadRequest, `%smissing "channels" (an array of channel names) or "channel"`, where)
	}
	if len(name) > lim.MaxEventNameLength {
		return ev, errorf(http.StatusBadRequest, "%sevent name is %d characters, over the limit of %d", where, len(name), lim.MaxEventNameLength)
	}
	if strings.HasPrefix(name, "pusher_internal:") || strings.HasPrefix(name, "pusher:") {
		// Clients treat these as the server's own protocol events (member
		// lists, subscription state); a backend must not be able to fake them.
		return ev, errorf(http.StatusBadRequest, "%sevent names starting with pusher: or pusher_internal: are reserved", where)
	}
	if len(channels) == 0 {
		return ev, errorf(http.StatusBadRequest, `%s"channels" is empty: give at least one channel`, where)
	}
	if len(channels) > lim.MaxChannelsPerEvent {
		return ev, errorf(http.StatusBadRequest, "%sevent has %d channels, over the limit of %d", where, len(channels), lim.MaxChannelsPerEvent)
	}
	seen := make(map[string]bool, len(channels))
	for _, ch := range channels {
		if aerr := validateChannel(ch, lim.MaxChannelNameLength, true); aerr != nil {
			aerr.msg = where.String() + aerr.msg
			return ev, aerr
		}
		// A channel named twice would deliver the event twice to its
		// subscribers; Pusher treats the list as a set.
		if !seen[ch] {
			seen[ch] = true
			ev.channels = append(ev.channels, ch)
		}
	}
	if socketID != "" && !validSocketID(socketID) {
		return ev, errorf(http.StatusBadRequest, `%ssocket_id %q is not a socket id: it must be two integers joined by a dot, like "123.456"`, where, truncate(socketID, 64))
	}
	if ev.info, aerr = parseInfo(info, infoUserCount, infoSubscriptionCount); aerr != nil {
		aerr.msg = where.String() + aerr.msg
		return ev, aerr
	}
	// Size last: a request that is both malformed and too big gets the 400
	// that tells the sender what else to fix.
	if len(data) > lim.MaxEventBytes {
		return ev, errorf(http.StatusRequestEntityTooLarge, "%sevent data is %d bytes, over the limit of %d", where, len(data), lim.MaxEventBytes)
	}
	ev.name, ev.data, ev.socketID = name, data, socketID
	return ev, nil
}

// validateChannel applies the channel name rules. allowUserChannel lets
// through #server-to-user-<id>, the only #-name outsiders may use (it is
// how the SDKs' sendToUser reaches a signed-in user).
func validateChannel(name string, max int, allowUserChannel bool) *apiError {
	hash := strings.HasPrefix(name, "#")
	if hash && (!allowUserChannel || !strings.HasPrefix(name, pusher.ServerToUserPrefix) || len(name) == len(pusher.ServerToUserPrefix)) {
		return errorf(http.StatusBadRequest, "channel name %q: names starting with # are reserved; the only one allowed is %s<user id>", truncate(name, 64), pusher.ServerToUserPrefix)
	}
	if err := pusher.ValidateChannelName(name, max, hash); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return nil
}

// validSocketID matches ^\d+\.\d+$ (ASCII digits), the SDKs' own check.
func validSocketID(s string) bool {
	a, b, ok := strings.Cut(s, ".")
	return ok && allDigits(a) && allDigits(b)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeObject decodes exactly one JSON object from b into v; anything
// else (another JSON type, trailing data, a type mismatch) is a 400 that
// names what was being decoded.
func decodeObject(b []byte, v any, what string) *apiError {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return errorf(http.StatusBadRequest, "%s is empty: a JSON object is required", what)
	}
	if t[0] != '{' {
		return errorf(http.StatusBadRequest, "%s must be a JSON object", what)
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "%s is not valid JSON: %v", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "%s has data after the JSON object", what)
	}
	return nil
}

func isNull(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// Info attributes.
const (
	infoUserCount         = "user_count"
	infoSubscriptionCount = "subscription_count"
	infoCache             = "cache"
)

// infoSet is the parsed comma list of an info parameter.
type infoSet map[string]bool

func (s infoSet) has(k string) bool { return s[k] }

// parseInfo splits a comma list, ignoring blanks, and refuses attributes
// not in allowed: a typo would otherwise silently return nothing.
func parseInfo(s string, allowed ...string) (infoSet, *apiError) {
	if s == "" { // the usual case: nothing asked, nothing to allocate
		return nil, nil
	}
	set := infoSet{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || f == a
		}
		if !ok {
			return nil, errorf(http.StatusBadRequest, "unknown info attribute %q: allowed here: %s", truncate(f, 64), strings.Join(allowed, ", "))
		}
		set[f] = true
	}
	return set, nil
}
