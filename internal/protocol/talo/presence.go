package talo

import (
	"context"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// Identified sockets register their player with the hub's signed-in users
// (cluster-wide), so that the stale-presence sweep can tell a player whose
// node died (presence left online) from one still connected anywhere.

func (c *sockConn) userOnline(playerID string) {
	if _, err := c.s.hub.UserOnline(context.Background(), c.ns, playerID, c.hubKey, c); err != nil {
		c.s.log.Warn("signed-in user not recorded", "player", playerID, "err", err)
	}
}

func (c *sockConn) userOffline(playerID string) {
	if _, err := c.s.hub.UserOffline(context.Background(), c.ns, playerID, c.hubKey, c); err != nil {
		c.s.log.Warn("signed-in user not removed", "player", playerID, "err", err)
	}
}

// presenceSweeper runs SweepPresence every PresenceSweepInterval.
func (s *Server) presenceSweeper(ctx context.Context) {
	t := time.NewTicker(s.opts.PresenceSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.SweepPresence(ctx); err != nil {
				s.log.Warn("stale presence sweep failed", "err", err)
			} else if n > 0 {
				s.log.Info("stale presence marked offline", "players", n)
			}
		}
	}
}

// SweepPresence marks offline (with the usual broadcast and temporary
// channel cleanup) every player whose presence is online, has not changed
// for PresenceStaleAfter, and who has no socket anywhere in the cluster:
// what a crashed node leaves behind. It returns how many it changed.
func (s *Server) SweepPresence(ctx context.Context) (int, error) {
	stale, err := s.st.StaleOnlinePresence(ctx, s.now().Add(-s.opts.PresenceStaleAfter))
	if err != nil {
		return 0, err
	}
	byGame := map[int64][]store.StalePresence{}
	for _, sp := range stale {
		byGame[sp.GameID] = append(byGame[sp.GameID], sp)
	}
	n := 0
	for gameID, rows := range byGame {
		game, err := s.st.Game(ctx, gameID)
		if err != nil {
			return n, err
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.PlayerID
		}
		online, err := s.hub.OnlineUsers(ctx, s.namespace(gameID), ids)
		if err != nil {
			return n, err
		}
		live := map[string]bool{}
		for _, id := range online {
			live[id] = true
		}
		off := false
		for _, r := range rows {
			if live[r.PlayerID] {
				continue
			}
			if err := s.setPresence(ctx, game, r.AliasID, r.PlayerID, &off, nil); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
