package talo

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

func (s *Server) relationshipRoutes() {
	read, write := []string{"read:playerRelationships"}, []string{"write:playerRelationships"}
	s.handle("POST /v1/players/relationships", route{bucket: bucketDefault, scopes: write, alias: true, validate: func(c *apiCtx) {
		c.bodyInt("aliasId", true, false)
		if t, ok := c.bodyString("relationshipType", true); ok && t != "unidirectional" && t != "bidirectional" {
			c.fail("relationshipType", "relationshipType must be unidirectional or bidirectional")
		}
	}, handle: s.createSubscription})
	s.handle("PUT /v1/players/relationships/{id}/confirm", route{bucket: bucketDefault, scopes: write, alias: true,
		validate: func(c *apiCtx) { c.pathID("id") }, handle: s.confirmSubscription})
	s.handle("DELETE /v1/players/relationships/{id}", route{bucket: bucketDefault, scopes: write, alias: true,
		validate: func(c *apiCtx) { c.pathID("id") }, handle: s.deleteSubscription})
	s.handle("GET /v1/players/relationships/subscribers", route{bucket: bucketDefault, scopes: read, alias: true,
		validate: validateSubscriptionList, handle: func(c *apiCtx) { s.listSubscriptions(c, false) }})
	s.handle("GET /v1/players/relationships/subscriptions", route{bucket: bucketDefault, scopes: read, alias: true,
		validate: validateSubscriptionList, handle: func(c *apiCtx) { s.listSubscriptions(c, true) }})
}

func validateSubscriptionList(c *apiCtx) {
	c.page()
	if v := c.r.URL.Query().Get("confirmed"); v != "" && v != "true" && v != "false" {
		c.fail("confirmed", "confirmed must be true or false")
	}
}

// pushSubscription sends a relationships message to aliases.
func (s *Server) pushSubscription(c *apiCtx, res string, data any, to ...int64) {
	s.toAliases(c.ctx, c.game.ID, kindRelationships, to, encodeRes(res, data))
}

func (s *Server) createSubscription(c *apiCtx) {
	to, _, _ := c.bodyInt("aliasId", true, false)
	relType, _ := c.bodyString("relationshipType", true)
	if to == c.alias.ID {
		c.message(http.StatusBadRequest, "Cannot create a subscription to yourself")
		return
	}
	if _, err := s.st.Alias(c.ctx, c.game.ID, to); errors.Is(err, store.ErrNotFound) {
		c.message(http.StatusNotFound, "Player not found")
		return
	} else if c.internal(err) {
		return
	}
	sub, err := s.st.CreateSubscription(c.ctx, c.alias.ID, to, relType, false)
	if errors.Is(err, store.ErrConflict) {
		c.message(http.StatusBadRequest, "Subscription already exists")
		return
	}
	if c.internal(err) {
		return
	}
	j, err := c.ren.subscription(c.ctx, sub)
	if c.internal(err) {
		return
	}
	s.pushSubscription(c, "v1.player-relationships.subscription-created", map[string]any{"subscription": j}, to)
	c.writeJSON(http.StatusOK, map[string]any{"subscription": j})
}

// confirmSubscription confirms a subscription to the caller; a
// bidirectional one also creates (or confirms) the reciprocal one.
func (s *Server) confirmSubscription(c *apiCtx) {
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	sub, err := s.st.Subscription(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.SubscribedToID != c.alias.ID) {
		c.message(http.StatusNotFound, "Subscription not found")
		return
	}
	if c.internal(err) {
		return
	}
	if sub.Confirmed {
		c.message(http.StatusBadRequest, "Subscription already confirmed")
		return
	}
	if c.internal(s.st.ConfirmSubscription(c.ctx, sub.ID)) {
		return
	}
	sub.Confirmed = true
	if sub.RelationshipType == "bidirectional" {
		rec, err := s.st.FindSubscription(c.ctx, sub.SubscribedToID, sub.SubscriberID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = s.st.CreateSubscription(c.ctx, sub.SubscribedToID, sub.SubscriberID, "bidirectional", true)
		case err == nil:
			err = s.st.ConfirmSubscription(c.ctx, rec.ID)
		}
		if c.internal(err) {
			return
		}
	}
	sub, err = s.st.Subscription(c.ctx, sub.ID)
	if c.internal(err) {
		return
	}
	j, err := c.ren.subscription(c.ctx, sub)
	if c.internal(err) {
		return
	}
	s.pushSubscription(c, "v1.player-relationships.subscription-confirmed", map[string]any{"subscription": j}, sub.SubscriberID)
	c.writeJSON(http.StatusOK, map[string]any{"subscription": j})
}

// deleteSubscription deletes the caller's subscription (and, when
// bidirectional, the reciprocal one) and tells both parties.
func (s *Server) deleteSubscription(c *apiCtx) {
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	sub, err := s.st.Subscription(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.SubscriberID != c.alias.ID) {
		c.message(http.StatusNotFound, "Subscription not found")
		return
	}
	if c.internal(err) {
		return
	}
	j, err := c.ren.subscription(c.ctx, sub)
	if c.internal(err) {
		return
	}
	var recJ *subscriptionJSON
	if sub.RelationshipType == "bidirectional" {
		if rec, err := s.st.FindSubscription(c.ctx, sub.SubscribedToID, sub.SubscriberID); err == nil {
			rj, err := c.ren.subscription(c.ctx, rec)
			if c.internal(err) || c.internal(s.st.DeleteSubscription(c.ctx, rec.ID)) {
				return
			}
			recJ = &rj
		}
	}
	if c.internal(s.st.DeleteSubscription(c.ctx, sub.ID)) {
		return
	}
	s.pushSubscription(c, "v1.player-relationships.subscription-deleted", struct {
		Subscription           subscriptionJSON  `json:"subscription"`
		ReciprocalSubscription *subscriptionJSON `json:"reciprocalSubscription"`
	}{j, recJ}, sub.SubscriberID, sub.SubscribedToID)
	c.noContent()
}

func (s *Server) listSubscriptions(c *apiCtx, mine bool) {
	q := c.r.URL.Query()
	page := c.page()
	f := store.SubscriptionFilter{RelationshipType: q.Get("relationshipType"), Offset: page * s.opts.PageSize, Limit: s.opts.PageSize}
	if mine {
		f.SubscriberID = c.alias.ID
	} else {
		f.SubscribedToID = c.alias.ID
	}
	if v := q.Get("confirmed"); v != "" {
		b := v == "true"
		f.Confirmed = &b
	}
	if v := q.Get("aliasId"); v != "" {
		f.OtherAliasID, _ = strconv.ParseInt(v, 10, 64)
	}
	subs, total, err := s.st.ListSubscriptions(c.ctx, f)
	if c.internal(err) {
		return
	}
	out := make([]subscriptionJSON, 0, len(subs))
	for _, sub := range subs {
		j, err := c.ren.subscription(c.ctx, sub)
		if c.internal(err) {
			return
		}
		out = append(out, j)
	}
	c.writeJSON(http.StatusOK, struct {
		Subscriptions []subscriptionJSON `json:"subscriptions"`
		Count         int                `json:"count"`
		ItemsPerPage  int                `json:"itemsPerPage"`
		IsLastPage    bool               `json:"isLastPage"`
	}{out, total, s.opts.PageSize, (page+1)*s.opts.PageSize >= total})
}
