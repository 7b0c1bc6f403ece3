package talo

import (
	"context"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// Reasons of v1.channels.player-left.
const (
	leaveDefault   = 0
	leaveTemporary = 1
)

// notifyMembers sends one response to every member of a channel with
// read:gameChannels (membership read now, from the store: no cache to go
// stale), encoded once.
func (s *Server) notifyMembers(ctx context.Context, gameID, channelID int64, payload []byte) error {
	members, err := s.st.MemberIDs(ctx, channelID)
	if err != nil {
		return err
	}
	s.toAliases(ctx, gameID, kindChannels, members, payload)
	return nil
}

// joinChannel adds a member; a new member is announced to all members,
// itself included.
func (s *Server) joinChannel(ctx context.Context, game store.Game, ch store.Channel, aliasID int64) (bool, error) {
	added, err := s.st.AddMember(ctx, ch.ID, aliasID)
	if err != nil || !added {
		return added, err
	}
	return true, s.announceJoined(ctx, game, ch, aliasID)
}

// unityChannelEvents are the names Unity's ChannelsAPI listens for instead
// of the reference's (spec section 15.1).
var unityChannelEvents = map[string]string{
	"v1.channels.player-joined": "v1.channels.joined",
	"v1.channels.player-left":   "v1.channels.left",
}

// channelEvent sends a channel event to the given members, and also under
// Unity's name when Options.UnityChannelEvents is set.
func (s *Server) channelEvent(ctx context.Context, gameID int64, members []int64, res string, data any) {
	s.toAliases(ctx, gameID, kindChannels, members, encodeRes(res, data))
	if alt := unityChannelEvents[res]; alt != "" && s.opts.UnityChannelEvents {
		s.toAliases(ctx, gameID, kindChannels, members, encodeRes(alt, data))
	}
}

// announceJoined sends player-joined for a member (the joiner included).
func (s *Server) announceJoined(ctx context.Context, game store.Game, ch store.Channel, aliasID int64) error {
	ren := render{st: s.st, game: game}
	cj, err := ren.channel(ctx, ch, false, false)
	if err != nil {
		return err
	}
	aj, err := ren.aliasByID(ctx, aliasID)
	if err != nil {
		return err
	}
	members, err := s.st.MemberIDs(ctx, ch.ID)
	if err != nil {
		return err
	}
	s.channelEvent(ctx, game.ID, members, "v1.channels.player-joined", struct {
		Channel     channelJSON `json:"channel"`
		PlayerAlias *aliasJSON  `json:"playerAlias"`
	}{cj, aj})
	return nil
}

// leaveChannel removes a member: player-left goes to every member, the
// leaver included, before the removal. With autoCleanup, the owner
// leaving or the last member leaving deletes the channel instead (deleted
// to every member, the leaver included); the owner leaving otherwise
// leaves it without an owner. It reports whether the channel was deleted.
func (s *Server) leaveChannel(ctx context.Context, game store.Game, ch store.Channel, aliasID int64, reason int) (bool, error) {
	members, err := s.st.MemberIDs(ctx, ch.ID)
	if err != nil {
		return false, err
	}
	if !containsID(members, aliasID) {
		return false, nil
	}
	ren := render{st: s.st, game: game}
	cj, err := ren.channel(ctx, ch, false, false)
	if err != nil {
		return false, err
	}
	aj, err := ren.aliasByID(ctx, aliasID)
	if err != nil {
		return false, err
	}
	type meta struct {
		Reason int `json:"reason"`
	}
	s.channelEvent(ctx, game.ID, members, "v1.channels.player-left", struct {
		Channel     channelJSON `json:"channel"`
		PlayerAlias *aliasJSON  `json:"playerAlias"`
		Meta        meta        `json:"meta"`
	}{cj, aj, meta{reason}})
	isOwner := ch.OwnerAliasID == aliasID
	if ch.AutoCleanup && (isOwner || len(members) <= 1) {
		// As the reference: deleted goes to the members with the leaver
		// still among them.
		return true, s.deleteChannel(ctx, game, ch)
	}
	if _, err := s.st.RemoveMember(ctx, ch.ID, aliasID); err != nil {
		return false, err
	}
	if isOwner {
		return false, s.st.SetChannelOwner(ctx, ch.ID, 0)
	}
	return false, nil
}

// deleteChannel tells the members, then deletes the channel.
func (s *Server) deleteChannel(ctx context.Context, game store.Game, ch store.Channel) error {
	cj, err := render{st: s.st, game: game}.channel(ctx, ch, false, false)
	if err != nil {
		return err
	}
	payload := encodeRes("v1.channels.deleted", struct {
		Channel channelJSON `json:"channel"`
	}{cj})
	if err := s.notifyMembers(ctx, game.ID, ch.ID, payload); err != nil {
		return err
	}
	return s.st.DeleteChannel(ctx, ch.ID)
}
