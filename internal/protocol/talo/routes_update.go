package talo

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// updateChannel is PUT /v1/game-channels/{id} (owner only). A changed
// owner is announced with ownership-transferred (the new owner becomes a
// member silently); anything else given with updated and the list of the
// properties given (the reference counts a given field as changed).
func (s *Server) updateChannel(c *apiCtx) {
	ch, ok := c.loadOwnedChannel()
	if !ok {
		return
	}
	props, _ := c.bodyProps("props", false, true)
	if rejected := rejectProps(props); len(rejected) > 0 {
		c.writeJSON(http.StatusBadRequest, map[string]any{"errors": map[string][]string{"props": {rejected[0].Message}}, "rejectedProps": rejected})
		return
	}
	var changed []string
	if name, present := c.bodyString("name", false); present && strings.TrimSpace(name) != "" {
		ch.Name = strings.TrimSpace(name)
		changed = append(changed, "name")
	}
	var changes []store.PropChange
	if _, present := c.body["props"]; present {
		for _, p := range props {
			changes = append(changes, store.PropChange{Key: p.Key, Value: p.Value})
		}
		changed = append(changed, "props")
	}
	ownerField := "ownerAliasId"
	if _, ok := c.body[ownerField]; !ok {
		ownerField = "newOwnerAliasId"
	}
	newOwner, ownerGiven, ownerNull := c.bodyInt(ownerField, false, true)
	if ownerField == "newOwnerAliasId" && (ownerNull || newOwner <= 0) {
		// Unity's JsonUtility writes an unset int as 0 (and an older
		// request class carries the field on every update): not a transfer.
		ownerGiven = false
	}
	transferred := false
	if ownerGiven && !ownerNull {
		if _, err := s.st.Alias(c.ctx, c.game.ID, newOwner); errors.Is(err, store.ErrNotFound) {
			c.message(http.StatusNotFound, "New owner not found")
			return
		} else if c.internal(err) {
			return
		}
		transferred = newOwner != ch.OwnerAliasID
		ch.OwnerAliasID = newOwner
		changed = append(changed, "ownerAliasId")
	} else if ownerGiven {
		ch.OwnerAliasID = 0
		changed = append(changed, "ownerAliasId")
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"autoCleanup", &ch.AutoCleanup}, {"private", &ch.Private}, {"temporaryMembership", &ch.TemporaryMembership}} {
		if v := c.bodyBool(f.name); v != nil {
			*f.dst = *v
			changed = append(changed, f.name)
		}
	}
	ch, err := s.st.UpdateChannel(c.ctx, ch, changes)
	if c.internal(err) {
		return
	}
	if transferred {
		if _, err := s.st.AddMember(c.ctx, ch.ID, newOwner); c.internal(err) {
			return
		}
		cj, err := c.ren.channel(c.ctx, ch, false, false)
		if c.internal(err) {
			return
		}
		oj, err := c.ren.aliasByID(c.ctx, newOwner)
		if c.internal(err) {
			return
		}
		if c.internal(s.notifyMembers(c.ctx, c.game.ID, ch.ID, encodeRes("v1.channels.ownership-transferred", struct {
			Channel  channelJSON `json:"channel"`
			NewOwner *aliasJSON  `json:"newOwner"`
		}{cj, oj}))) {
			return
		}
	}
	if slices.ContainsFunc(changed, func(p string) bool { return p != "ownerAliasId" }) {
		cj, err := c.ren.channel(c.ctx, ch, false, false)
		if c.internal(err) {
			return
		}
		if c.internal(s.notifyMembers(c.ctx, c.game.ID, ch.ID, encodeRes("v1.channels.updated", struct {
			Channel           channelJSON `json:"channel"`
			ChangedProperties []string    `json:"changedProperties"`
		}{cj, changed}))) {
			return
		}
	}
	c.writeChannel(ch)
}

// flatten merges the rows of an array key into one prop whose value is the
// JSON array of its values (the earliest row's metadata), as GET /storage
// answers.
func flatten(rows []store.StorageProp) []store.StorageProp {
	var out []store.StorageProp
	idx := map[string]int{}
	values := map[string][]string{}
	for _, r := range rows {
		if !strings.HasSuffix(r.Key, "[]") {
			out = append(out, r)
			continue
		}
		if _, ok := idx[r.Key]; !ok {
			idx[r.Key] = len(out)
			out = append(out, r)
		}
		values[r.Key] = append(values[r.Key], r.Value)
	}
	for k, i := range idx {
		b, _ := json.Marshal(values[k])
		out[i].Value = string(b)
	}
	return out
}

func (s *Server) getStorage(c *apiCtx) {
	ch, ok := c.loadMemberChannel()
	if !ok {
		return
	}
	rows, err := s.st.StorageProps(c.ctx, ch.ID, []string{c.query("propKey", true)})
	if c.internal(err) {
		return
	}
	var prop *storagePropJSON
	if flat := flatten(rows); len(flat) > 0 {
		j, err := c.ren.storageProp(c.ctx, flat[0])
		if c.internal(err) {
			return
		}
		prop = &j
	}
	c.writeJSON(http.StatusOK, map[string]any{"prop": prop})
}

func (s *Server) listStorage(c *apiCtx) {
	ch, ok := c.loadMemberChannel()
	if !ok {
		return
	}
	rows, err := s.st.StorageProps(c.ctx, ch.ID, c.r.URL.Query()["propKeys"])
	if c.internal(err) {
		return
	}
	out, err := c.ren.storageProps(c.ctx, rows)
	if c.internal(err) {
		return
	}
	c.writeJSON(http.StatusOK, map[string]any{"props": out})
}

// putStorage applies {props:[{key, value|null}]}: null deletes, a key
// ending in "[]" takes a JSON array of strings (deduplicated, at most
// 1000) that replaces its values. Invalid props are reported in
// failedProps; the rest are applied, and storage.updated always goes to
// the members.
func (s *Server) putStorage(c *apiCtx) {
	ch, ok := c.loadMemberChannel()
	if !ok {
		return
	}
	props, _ := c.bodyProps("props", true, true)
	failed := []rejectedPropJSON{}
	var changes []store.StorageChange
	for _, p := range props {
		if r := rejectProps([]bodyProp{p}); len(r) > 0 && r[0].Error != "PROP_KEY_RESERVED" {
			failed = append(failed, r[0])
			continue
		}
		switch {
		case p.Value == nil:
			changes = append(changes, store.StorageChange{Key: p.Key, Delete: true})
		case strings.HasSuffix(p.Key, "[]"):
			var vals []string
			if json.Unmarshal([]byte(*p.Value), &vals) != nil {
				vals = []string{*p.Value}
			}
			vals = dedupe(vals)
			if len(vals) > maxArrayLen {
				failed = append(failed, rejectedPropJSON{p.Key, "PROP_ARRAY_TOO_LONG", "Prop array length (" + strconv.Itoa(len(vals)) + ") exceeds 1000 items"})
				continue
			}
			changes = append(changes, store.StorageChange{Key: p.Key, Array: true, Values: vals})
		default:
			changes = append(changes, store.StorageChange{Key: p.Key, Value: *p.Value})
		}
	}
	up, del, err := s.st.PutStorage(c.ctx, ch.ID, c.alias.ID, changes)
	if c.internal(err) {
		return
	}
	upJ, err := c.ren.storageProps(c.ctx, up)
	if c.internal(err) {
		return
	}
	delJ, err := c.ren.storageProps(c.ctx, del)
	if c.internal(err) {
		return
	}
	cj, err := c.ren.channel(c.ctx, ch, false, false)
	if c.internal(err) {
		return
	}
	if c.internal(s.notifyMembers(c.ctx, c.game.ID, ch.ID, encodeRes("v1.channels.storage.updated", struct {
		Channel       channelJSON       `json:"channel"`
		UpsertedProps []storagePropJSON `json:"upsertedProps"`
		DeletedProps  []storagePropJSON `json:"deletedProps"`
	}{cj, upJ, delJ}))) {
		return
	}
	withCount, err := c.ren.channel(c.ctx, ch, true, c.includeDev)
	if c.internal(err) {
		return
	}
	c.writeJSON(http.StatusOK, struct {
		Channel       channelJSON        `json:"channel"`
		UpsertedProps []storagePropJSON  `json:"upsertedProps"`
		DeletedProps  []storagePropJSON  `json:"deletedProps"`
		FailedProps   []rejectedPropJSON `json:"failedProps"`
	}{withCount, upJ, delJ, failed})
}

func dedupe(v []string) []string {
	seen := map[string]bool{}
	out := v[:0:0]
	for _, s := range v {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
