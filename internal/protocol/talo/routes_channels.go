package talo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// Prop limits (spec section 6, RejectedProp).
const (
	maxPropKey   = 128
	maxPropValue = 512
	maxArrayLen  = 1000
	maxListKeys  = 50
)

func (s *Server) channelRoutes() {
	read, write := []string{"read:gameChannels"}, []string{"write:gameChannels"}
	id := func(c *apiCtx) { c.pathID("id") }
	s.handle("GET /v1/game-channels", route{bucket: bucketDefault, scopes: read, validate: func(c *apiCtx) { c.page() }, handle: s.listChannels})
	s.handle("GET /v1/game-channels/subscriptions", route{bucket: bucketDefault, scopes: read, alias: true, handle: s.subscriptions})
	s.handle("POST /v1/game-channels", route{bucket: bucketDefault, scopes: write, alias: true, validate: validateCreate, handle: s.createChannel})
	s.handle("GET /v1/game-channels/{id}", route{bucket: bucketDefault, scopes: read, validate: id, handle: s.getChannel})
	s.handle("PUT /v1/game-channels/{id}", route{bucket: bucketDefault, scopes: write, alias: true, validate: validateUpdate, handle: s.updateChannel})
	s.handle("DELETE /v1/game-channels/{id}", route{bucket: bucketDefault, scopes: write, alias: true, validate: id, handle: s.deleteChannelRoute})
	s.handle("POST /v1/game-channels/{id}/join", route{bucket: bucketDefault, scopes: write, alias: true, validate: id, handle: s.join})
	s.handle("POST /v1/game-channels/{id}/leave", route{bucket: bucketDefault, scopes: write, alias: true, validate: id, handle: s.leave})
	s.handle("POST /v1/game-channels/{id}/invite", route{bucket: bucketDefault, scopes: write, alias: true, validate: func(c *apiCtx) {
		c.pathID("id")
		c.bodyInt("inviteeAliasId", true, false)
	}, handle: s.invite})
	s.handle("GET /v1/game-channels/{id}/members", route{bucket: bucketDefault, scopes: read, alias: true, validate: func(c *apiCtx) {
		c.pathID("id")
		c.page()
	}, handle: s.members})
	s.handle("GET /v1/game-channels/{id}/storage", route{bucket: bucketDefault, scopes: read, alias: true, validate: func(c *apiCtx) {
		c.pathID("id")
		c.query("propKey", true)
	}, handle: s.getStorage})
	s.handle("GET /v1/game-channels/{id}/storage/list", route{bucket: bucketDefault, scopes: read, alias: true, validate: validateStorageList, handle: s.listStorage})
	s.handle("PUT /v1/game-channels/{id}/storage", route{bucket: bucketDefault, scopes: write, alias: true, validate: func(c *apiCtx) {
		c.pathID("id")
		c.bodyProps("props", true, true)
	}, handle: s.putStorage})
}

// bodyProp is one {key, value} of a request; Value nil is null.
type bodyProp struct {
	Key   string
	Value *string
}

// bodyProps reads an array of {key, value} (value null only when nullable).
func (c *apiCtx) bodyProps(name string, required, nullable bool) ([]bodyProp, bool) {
	raw, ok := c.body[name]
	if !ok {
		if required {
			c.fail(name, name+" is missing from the request body")
		}
		return nil, false
	}
	var items []map[string]json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		c.fail(name, "Props must be an array")
		return nil, false
	}
	out := make([]bodyProp, 0, len(items))
	for _, it := range items {
		k, ok := str(it["key"])
		if !ok {
			c.fail(name, "Props must be an array of objects with a string key")
			return nil, false
		}
		p := bodyProp{Key: k}
		switch v := it["value"]; {
		case nullable && (v == nil || firstByte(v) == 'n'):
		default:
			s, ok := str(v)
			if !ok {
				c.fail(name, "Prop values must be strings")
				return nil, false
			}
			p.Value = &s
		}
		out = append(out, p)
	}
	return out, true
}

// rejectProps checks prop sizes; rejected ones are answered with 400.
func rejectProps(props []bodyProp) []rejectedPropJSON {
	var out []rejectedPropJSON
	for _, p := range props {
		switch {
		case len([]rune(p.Key)) > maxPropKey:
			out = append(out, rejectedPropJSON{p.Key, "PROP_KEY_TOO_LONG", fmt.Sprintf("Prop key length (%d) exceeds %d characters", len([]rune(p.Key)), maxPropKey)})
		case p.Value != nil && len([]rune(*p.Value)) > maxPropValue:
			out = append(out, rejectedPropJSON{p.Key, "PROP_VALUE_TOO_LONG", fmt.Sprintf("Prop value length (%d) exceeds %d characters", len([]rune(*p.Value)), maxPropValue)})
		case strings.HasPrefix(p.Key, "META_"):
			out = append(out, rejectedPropJSON{p.Key, "PROP_KEY_RESERVED", fmt.Sprintf("Prop key %s is reserved", p.Key)})
		}
	}
	return out
}

func validateCreate(c *apiCtx) {
	c.bodyString("name", true)
	c.bodyProps("props", false, false)
	c.bodyBool("autoCleanup")
	c.bodyBool("private")
	c.bodyBool("temporaryMembership")
}

func validateUpdate(c *apiCtx) {
	c.pathID("id")
	c.bodyString("name", false)
	c.bodyProps("props", false, true)
	c.bodyInt("ownerAliasId", false, true)
	if _, ok := c.body["ownerAliasId"]; !ok {
		c.bodyInt("newOwnerAliasId", false, true) // Unity's name for it
	}
	c.bodyBool("autoCleanup")
	c.bodyBool("private")
	c.bodyBool("temporaryMembership")
}

func validateStorageList(c *apiCtx) {
	c.pathID("id")
	keys := c.r.URL.Query()["propKeys"]
	switch {
	case len(keys) == 0:
		c.fail("propKeys", "propKeys is missing from the request query")
	case len(keys) > maxListKeys:
		c.fail("propKeys", fmt.Sprintf("Maximum of %d prop keys allowed", maxListKeys))
	default:
		for _, k := range keys {
			if strings.TrimSpace(k) == "" {
				c.fail("propKeys", "propKeys must not contain empty keys")
				return
			}
		}
	}
}

// loadChannel loads the {id} channel of the key's game (404 when missing).
func (c *apiCtx) loadChannel() (store.Channel, bool) {
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	ch, err := c.s.st.Channel(c.ctx, c.game.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		c.message(http.StatusNotFound, "Channel not found")
		return ch, false
	}
	return ch, !c.internal(err)
}

// loadOwnedChannel also requires the alias to be the owner (403).
func (c *apiCtx) loadOwnedChannel() (store.Channel, bool) {
	ch, ok := c.loadChannel()
	if ok && (ch.OwnerAliasID == 0 || ch.OwnerAliasID != c.alias.ID) {
		c.message(http.StatusForbidden, "This player is not the owner of the channel")
		return ch, false
	}
	return ch, ok
}

// loadMemberChannel also requires the alias to be a member (403).
func (c *apiCtx) loadMemberChannel() (store.Channel, bool) {
	ch, ok := c.loadChannel()
	if !ok {
		return ch, false
	}
	member, err := c.s.st.IsMember(c.ctx, ch.ID, c.alias.ID)
	if c.internal(err) {
		return ch, false
	}
	if !member {
		c.message(http.StatusForbidden, "This player is not a member of the channel")
		return ch, false
	}
	return ch, true
}

// writeChannel answers {"channel": <channel with memberCount>}.
func (c *apiCtx) writeChannel(ch store.Channel) {
	j, err := c.ren.channel(c.ctx, ch, true, c.includeDev)
	if c.internal(err) {
		return
	}
	c.writeJSON(http.StatusOK, map[string]any{"channel": j})
}

func (c *apiCtx) channelsJSON(chans []store.Channel) ([]channelJSON, bool) {
	out := make([]channelJSON, 0, len(chans))
	for _, ch := range chans {
		j, err := c.ren.channel(c.ctx, ch, true, c.includeDev)
		if c.internal(err) {
			return nil, false
		}
		out = append(out, j)
	}
	return out, true
}

func (s *Server) listChannels(c *apiCtx) {
	page := c.page()
	f := store.ChannelFilter{Search: c.query("search", false), PropKey: c.query("propKey", false), PropValue: c.query("propValue", false),
		Offset: page * s.opts.PageSize, Limit: s.opts.PageSize}
	chans, total, err := s.st.ListChannels(c.ctx, c.game.ID, f)
	if c.internal(err) {
		return
	}
	out, ok := c.channelsJSON(chans)
	if !ok {
		return
	}
	c.writeJSON(http.StatusOK, struct {
		Channels     []channelJSON `json:"channels"`
		Count        int           `json:"count"`
		ItemsPerPage int           `json:"itemsPerPage"`
		IsLastPage   bool          `json:"isLastPage"`
	}{out, total, s.opts.PageSize, (page+1)*s.opts.PageSize >= total})
}

func (s *Server) subscriptions(c *apiCtx) {
	chans, _, err := s.st.ListChannels(c.ctx, c.game.ID, store.ChannelFilter{MemberAliasID: c.alias.ID, IncludePrivate: true,
		PropKey: c.query("propKey", false), PropValue: c.query("propValue", false)})
	if c.internal(err) {
		return
	}
	if out, ok := c.channelsJSON(chans); ok {
		c.writeJSON(http.StatusOK, map[string]any{"channels": out})
	}
}

func (s *Server) createChannel(c *apiCtx) {
	name, _ := c.bodyString("name", true)
	props, _ := c.bodyProps("props", false, false)
	if rejected := rejectProps(props); len(rejected) > 0 {
		c.writeJSON(http.StatusBadRequest, map[string]any{"errors": map[string][]string{"props": {rejected[0].Message}}, "rejectedProps": rejected})
		return
	}
	ch := store.Channel{GameID: c.game.ID, Name: strings.TrimSpace(name), OwnerAliasID: c.alias.ID,
		AutoCleanup: deref(c.bodyBool("autoCleanup")), Private: deref(c.bodyBool("private")),
		TemporaryMembership: deref(c.bodyBool("temporaryMembership"))}
	for _, p := range props {
		ch.Props = append(ch.Props, store.Prop{Key: p.Key, Value: *p.Value})
	}
	ch, err := s.st.CreateChannel(c.ctx, ch)
	if c.internal(err) {
		return
	}
	// The creator is already a member: announce it like a join.
	if err := s.announceJoined(c.ctx, c.game, ch, c.alias.ID); c.internal(err) {
		return
	}
	c.writeChannel(ch)
}

func deref(b *bool) bool { return b != nil && *b }

func (s *Server) getChannel(c *apiCtx) {
	if ch, ok := c.loadChannel(); ok {
		c.writeChannel(ch)
	}
}

func (s *Server) deleteChannelRoute(c *apiCtx) {
	ch, ok := c.loadOwnedChannel()
	if !ok {
		return
	}
	if !c.internal(s.deleteChannel(c.ctx, c.game, ch)) {
		c.noContent()
	}
}

func (s *Server) join(c *apiCtx) {
	ch, ok := c.loadChannel()
	if !ok {
		return
	}
	member, err := s.st.IsMember(c.ctx, ch.ID, c.alias.ID)
	if c.internal(err) {
		return
	}
	if ch.Private && !member {
		c.message(http.StatusForbidden, "This channel is private")
		return
	}
	if _, err := s.joinChannel(c.ctx, c.game, ch, c.alias.ID); c.internal(err) {
		return
	}
	c.writeChannel(ch)
}

func (s *Server) leave(c *apiCtx) {
	ch, ok := c.loadChannel()
	if !ok {
		return
	}
	if _, err := s.leaveChannel(c.ctx, c.game, ch, c.alias.ID, leaveDefault); c.internal(err) {
		return
	}
	c.noContent()
}

func (s *Server) invite(c *apiCtx) {
	ch, ok := c.loadOwnedChannel()
	if !ok {
		return
	}
	invitee, _, _ := c.bodyInt("inviteeAliasId", true, false)
	if invitee == c.alias.ID {
		c.message(http.StatusBadRequest, "Players cannot invite themselves")
		return
	}
	if _, err := s.st.Alias(c.ctx, c.game.ID, invitee); errors.Is(err, store.ErrNotFound) {
		c.message(http.StatusNotFound, "Invitee not found")
		return
	} else if c.internal(err) {
		return
	}
	if _, err := s.joinChannel(c.ctx, c.game, ch, invitee); c.internal(err) {
		return
	}
	c.noContent()
}

func (s *Server) members(c *apiCtx) {
	ch, ok := c.loadMemberChannel()
	if !ok {
		return
	}
	q := c.r.URL.Query()
	page := c.page()
	f := store.MemberFilter{PlayerID: q.Get("playerId"), Identifier: q.Get("identifier"), GroupID: q.Get("playerGroupId"),
		PropKey: q.Get("playerPropKey"), PropValue: q.Get("playerPropValue"), IncludeDev: c.includeDev,
		Offset: page * s.opts.PageSize, Limit: s.opts.PageSize}
	if f.PropKey == "" {
		// Both clients send propKey/propValue, which the reference
		// ignores; here they filter, as the clients intend.
		f.PropKey, f.PropValue = q.Get("propKey"), q.Get("propValue")
	}
	if v := q.Get("aliasId"); v != "" {
		f.AliasID, _ = strconv.ParseInt(v, 10, 64)
		if f.AliasID == 0 {
			f.AliasID = -1
		}
	}
	ids, total, err := s.st.Members(c.ctx, ch.ID, f)
	if c.internal(err) {
		return
	}
	aliases, err := s.st.Aliases(c.ctx, c.game.ID, ids)
	if c.internal(err) {
		return
	}
	out := make([]aliasJSON, 0, len(aliases))
	for _, a := range aliases {
		j, err := c.ren.alias(c.ctx, a)
		if c.internal(err) {
			return
		}
		out = append(out, j)
	}
	c.writeJSON(http.StatusOK, struct {
		Members      []aliasJSON `json:"members"`
		Count        int         `json:"count"`
		ItemsPerPage int         `json:"itemsPerPage"`
		IsLastPage   bool        `json:"isLastPage"`
	}{out, total, s.opts.PageSize, (page+1)*s.opts.PageSize >= total})
}
