package talo

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// identify is v1.players.identify (spec section 3.1).
func (c *sockConn) identify(d identifyData) error {
	ctx := context.Background()
	s := c.s
	tok, ok, err := s.kv.KVGet(ctx, kvNamespace, "socketToken:"+d.aliasKey())
	if err != nil {
		return err
	}
	if !ok || subtle.ConstantTimeCompare(tok, []byte(d.SocketToken)) != 1 {
		return newSocketError(reqIdentify, errInvalidSocketToken, nil)
	}
	a, err := s.st.Alias(ctx, c.game.ID, d.aliasID())
	if errors.Is(err, store.ErrNotFound) {
		// The reference's findOneOrFail message.
		return listenerError{fmt.Sprintf("PlayerAlias not found ({ id: %s, player: { game: %d } })", d.aliasKey(), c.game.ID)}
	}
	if err != nil {
		return err
	}
	if a.Service == "talo" {
		// Talo player-auth sessions are not implemented here, so no
		// session token can verify.
		return newSocketError(reqIdentify, errInvalidSession, nil)
	}
	c.mu.Lock()
	c.unsubscribeAliasLocked()
	prevPlayer := c.playerID
	c.aliasID, c.playerID = a.ID, a.Player.ID
	c.mu.Unlock()
	if prevPlayer != a.Player.ID {
		if prevPlayer != "" {
			c.userOffline(prevPlayer)
		}
		c.userOnline(a.Player.ID)
	}
	for _, kind := range aliasKinds {
		if hasScope(c.scopes, "read:"+kind) {
			c.subscribe(aliasChannel(a.ID, kind))
		}
	}
	if hasScope(c.scopes, "read:playerPresence") {
		c.subscribe(chanPresence)
	}
	on := true
	if err := s.setPresence(ctx, c.game, a.ID, a.Player.ID, &on, nil); err != nil {
		return err
	}
	a, err = s.st.Alias(ctx, c.game.ID, a.ID) // with its new presence
	if err != nil {
		return err
	}
	j, err := render{st: s.st, game: c.game}.alias(ctx, a)
	if err != nil {
		return err
	}
	c.send("v1.players.identify.success", j)
	return nil
}

// channelMessage is v1.channels.message (spec section 3.2).
func (c *sockConn) channelMessage(d messageData) error {
	ctx := context.Background()
	s := c.s
	aliasID, _ := c.identified()
	id := int64(d.ChannelID)
	if float64(id) != d.ChannelID {
		return listenerError{"Channel not found"}
	}
	ch, err := s.st.Channel(ctx, c.game.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return listenerError{"Channel not found"}
	}
	if err != nil {
		return err
	}
	members, err := s.st.MemberIDs(ctx, ch.ID)
	if err != nil {
		return err
	}
	if !containsID(members, aliasID) {
		return listenerError{"Player not in channel"}
	}
	ren := render{st: s.st, game: c.game}
	chJSON, err := ren.channel(ctx, ch, false, false)
	if err != nil {
		return err
	}
	sender, err := ren.aliasByID(ctx, aliasID)
	if err != nil || sender == nil {
		return listenerError{"Player not found"}
	}
	payload := encodeRes("v1.channels.message", struct {
		Channel     channelJSON `json:"channel"`
		Message     string      `json:"message"`
		PlayerAlias *aliasJSON  `json:"playerAlias"`
	}{chJSON, d.Message, sender})
	// Counted before the fan-out, so that a member who reads the channel
	// after receiving the message sees it counted.
	if err := s.st.IncrementMessages(ctx, ch.ID); err != nil {
		s.log.Warn("message count not updated", "channel", ch.ID, "err", err)
	}
	s.toAliases(ctx, c.game.ID, kindChannels, members, payload)
	return nil
}

// broadcast is v1.player-relationships.broadcast (spec section 3.3).
func (c *sockConn) broadcast(d broadcastData) error {
	ctx := context.Background()
	s := c.s
	aliasID, _ := c.identified()
	sender, err := render{st: s.st, game: c.game}.aliasByID(ctx, aliasID)
	if err != nil || sender == nil {
		return listenerError{"Player not found"}
	}
	subs, err := s.st.ConfirmedSubscriberIDs(ctx, aliasID)
	if err != nil {
		return err
	}
	payload := encodeRes("v1.player-relationships.broadcast", struct {
		Message     string     `json:"message"`
		PlayerAlias *aliasJSON `json:"playerAlias"`
	}{d.Message, sender})
	s.toAliases(ctx, c.game.ID, kindBroadcasts, subs, payload)
	return nil
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// setPresence changes a player's presence on behalf of an alias, removes
// the player from temporary channels when it goes offline, and broadcasts
// v1.players.presence.updated to the game. meta copies the reference's
// quirk: a field not given counts as changed.
func (s *Server) setPresence(ctx context.Context, game store.Game, aliasID int64, playerID string, online *bool, status *string) error {
	prev, _, next, err := s.st.SetPresence(ctx, playerID, aliasID, online, status)
	if err != nil {
		return err
	}
	if !next.Online {
		if err := s.leaveTemporaryChannels(ctx, game, playerID); err != nil {
			s.log.Warn("temporary channel cleanup failed", "player", playerID, "err", err)
		}
	}
	pj, err := render{st: s.st, game: game}.presence(ctx, next)
	if err != nil {
		return err
	}
	type meta struct {
		OnlineChanged       bool `json:"onlineChanged"`
		CustomStatusChanged bool `json:"customStatusChanged"`
	}
	payload := encodeRes("v1.players.presence.updated", struct {
		Presence presenceJSON `json:"presence"`
		Meta     meta         `json:"meta"`
	}{pj, meta{online == nil || prev.Online != *online, status == nil || prev.CustomStatus != *status}})
	s.publish(ctx, game.ID, chanPresence, payload)
	return nil
}

// leaveTemporaryChannels removes every alias of a player from the
// temporary-membership channels it is in (reason 1).
func (s *Server) leaveTemporaryChannels(ctx context.Context, game store.Game, playerID string) error {
	aliases, err := s.st.PlayerAliasIDs(ctx, playerID)
	if err != nil {
		return err
	}
	chans, err := s.st.TemporaryChannels(ctx, game.ID, aliases)
	if err != nil {
		return err
	}
	for _, ch := range chans {
		members, err := s.st.MemberIDs(ctx, ch.ID)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			if containsID(members, a) {
				if _, err := s.leaveChannel(ctx, game, ch, a, leaveTemporary); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
