package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// PublishRequest is the test-publish form's JSON body: a Pusher event
//
//	{"protocol":"pusher","app":"app-id","channel":"my-channel","event":"my-event","data":"{\"hello\":1}"}
//
// or a Damon EVENT to a group (data any JSON value)
//
//	{"protocol":"damon","group":"g1","event":"HELLO","data":{"n":1}}
type PublishRequest struct {
	Protocol string          `json:"protocol"`
	App      string          `json:"app,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Group    string          `json:"group,omitempty"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Bounds on the form's input; the protocol's own limits apply after them.
const (
	maxPublishBody = 64 << 10
	maxNameBytes   = 200
)

var errPublish = errors.New("bad publish request")

// DecodePublish reads and checks a publish request: one JSON object with
// only the fields above, a known protocol, printable names of 1-200
// bytes, and for Pusher data that is a JSON string (as the HTTP API takes
// it). The protocol's own rules (channel names, event size) are checked
// by the publisher.
func DecodePublish(body []byte) (PublishRequest, error) {
	var req PublishRequest
	if len(body) > maxPublishBody {
		return req, fmt.Errorf("%w: body over %d bytes", errPublish, maxPublishBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return PublishRequest{}, fmt.Errorf("%w: %v", errPublish, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return PublishRequest{}, fmt.Errorf("%w: one JSON object expected", errPublish)
	}
	if err := checkName("event", req.Event); err != nil {
		return PublishRequest{}, err
	}
	switch req.Protocol {
	case "pusher":
		if err := checkName("app", req.App); err != nil {
			return PublishRequest{}, err
		}
		if err := checkName("channel", req.Channel); err != nil {
			return PublishRequest{}, err
		}
		if req.Group != "" {
			return PublishRequest{}, fmt.Errorf("%w: group is for damon", errPublish)
		}
		var s string
		if len(req.Data) > 0 && json.Unmarshal(req.Data, &s) != nil {
			return PublishRequest{}, fmt.Errorf("%w: pusher data must be a JSON string", errPublish)
		}
		if strings.HasPrefix(req.Event, "pusher:") || strings.HasPrefix(req.Event, "pusher_internal:") {
			return PublishRequest{}, fmt.Errorf("%w: event names starting with pusher: are reserved", errPublish)
		}
	case "damon":
		if err := checkName("group", req.Group); err != nil {
			return PublishRequest{}, err
		}
		if req.App != "" || req.Channel != "" {
			return PublishRequest{}, fmt.Errorf("%w: app and channel are for pusher", errPublish)
		}
	default:
		return PublishRequest{}, fmt.Errorf("%w: protocol must be pusher or damon", errPublish)
	}
	return req, nil
}

func checkName(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: %s is required", errPublish, field)
	case len(v) > maxNameBytes:
		return fmt.Errorf("%w: %s longer than %d bytes", errPublish, field, maxNameBytes)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: %s is not printable UTF-8", errPublish, field)
	}
	return nil
}

// PusherData is the data string of a Pusher request ("" when absent).
func (r PublishRequest) PusherData() string {
	var s string
	_ = json.Unmarshal(r.Data, &s)
	return s
}

// DamonDocument is the EVENT document a client would send to the group.
func (r PublishRequest) DamonDocument() []byte {
	doc := struct {
		Op     int             `json:"op"`
		Event  string          `json:"event"`
		Data   json.RawMessage `json:"data,omitempty"`
		Intent struct {
			Target     string `json:"target"`
			Identifier string `json:"identifier"`
		} `json:"intent"`
	}{Event: r.Event, Data: r.Data}
	doc.Intent.Target, doc.Intent.Identifier = "GROUP", r.Group
	b, _ := json.Marshal(&doc) // every field marshals
	return b
}

// publish handles the form: 200 {"ok":true}, or 4xx {"error":...}.
func (c *Console) publish(w http.ResponseWriter, r *http.Request) {
	// A JSON content type cannot be sent cross-site without a CORS
	// preflight, which the console never grants.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	req, err := DecodePublish(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch req.Protocol {
	case "pusher":
		if c.opts.PublishPusher == nil || !slices.Contains(c.opts.PusherApps, req.App) {
			writeJSONError(w, http.StatusBadRequest, "no such Pusher app on this node")
			return
		}
		err = c.opts.PublishPusher(r.Context(), req.App, req.Channel, req.Event, req.PusherData())
	case "damon":
		if c.opts.PublishDamon == nil {
			writeJSONError(w, http.StatusBadRequest, "the Damon front-end is not enabled")
			return
		}
		err = c.opts.PublishDamon(req.DamonDocument())
	}
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	c.opts.Logger.Info("console: test event published", "protocol", req.Protocol, "app", req.App,
		"channel", req.Channel, "group", req.Group, "event", req.Event, "client", c.clientAddr(r))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
