package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Player is one player of a game, with its props and groups.
type Player struct {
	ID         string
	GameID     int64
	DevBuild   bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	Props      []Prop
	Groups     []Group
}

// Group is a player group (read only here; managed elsewhere).
type Group struct {
	ID   string
	Name string
}

// Alias is one identity of a player (service + identifier), with its player.
type Alias struct {
	ID         int64
	Service    string
	Identifier string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	LastSeenAt time.Time
	Player     Player
}

// Presence is a player's online state (one row per player).
type Presence struct {
	PlayerID     string
	AliasID      int64 // the alias that last changed it; 0 for none
	Online       bool
	CustomStatus string
	UpdatedAt    time.Time
}

const aliasColumns = `a.id, a.service, a.identifier, a.created_at, a.updated_at, a.last_seen_at,
	p.id, p.game_id, p.dev_build, p.created_at, p.last_seen_at`

func scanAlias(row interface{ Scan(...any) error }) (Alias, error) {
	var a Alias
	var ac, au, al, pc, pl int64
	err := row.Scan(&a.ID, &a.Service, &a.Identifier, &ac, &au, &al,
		&a.Player.ID, &a.Player.GameID, &a.Player.DevBuild, &pc, &pl)
	a.CreatedAt, a.UpdatedAt, a.LastSeenAt = time.UnixMilli(ac), time.UnixMilli(au), time.UnixMilli(al)
	a.Player.CreatedAt, a.Player.LastSeenAt = time.UnixMilli(pc), time.UnixMilli(pl)
	return a, err
}

// FindAlias looks an alias up by service and identifier.
func (s *Store) FindAlias(ctx context.Context, gameID int64, service, identifier string) (Alias, error) {
	a, err := scanAlias(s.db.QueryRowContext(ctx, s.q(`SELECT `+aliasColumns+` FROM player_aliases a JOIN players p ON p.id = a.player_id
		WHERE a.game_id = ? AND a.service = ? AND a.identifier = ?`), gameID, service, identifier))
	if err != nil {
		return a, notFound(err)
	}
	return a, s.fillPlayer(ctx, &a.Player)
}

// Alias loads an alias of the game with its player.
func (s *Store) Alias(ctx context.Context, gameID, aliasID int64) (Alias, error) {
	a, err := scanAlias(s.db.QueryRowContext(ctx, s.q(`SELECT `+aliasColumns+` FROM player_aliases a JOIN players p ON p.id = a.player_id
		WHERE a.game_id = ? AND a.id = ?`), gameID, aliasID))
	if err != nil {
		return a, notFound(err)
	}
	return a, s.fillPlayer(ctx, &a.Player)
}

// Aliases loads several aliases of a game, in the order of ids (missing
// ones are skipped).
func (s *Store) Aliases(ctx context.Context, gameID int64, ids []int64) ([]Alias, error) {
	out := make([]Alias, 0, len(ids))
	for _, id := range ids {
		a, err := s.Alias(ctx, gameID, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// PlayerAliasIDs lists every alias id of a player.
func (s *Store) PlayerAliasIDs(ctx context.Context, playerID string) ([]int64, error) {
	return s.ids(ctx, s.db, `SELECT id FROM player_aliases WHERE player_id = ? ORDER BY id`, playerID)
}

func (s *Store) fillPlayer(ctx context.Context, p *Player) error {
	var err error
	if p.Props, err = s.props(ctx, s.db, `SELECT key, value FROM player_props WHERE player_id = ? ORDER BY key`, p.ID); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT g.id, g.name FROM player_groups g JOIN player_group_members m ON m.group_id = g.id
		WHERE m.player_id = ? ORDER BY g.name`), p.ID)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	p.Groups = []Group{}
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.ID, &g.Name); err != nil {
			return err
		}
		p.Groups = append(p.Groups, g)
	}
	return rows.Err()
}

// Player loads a player of the game.
func (s *Store) Player(ctx context.Context, gameID int64, playerID string) (Player, error) {
	var p Player
	var pc, pl int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, game_id, dev_build, created_at, last_seen_at FROM players WHERE game_id = ? AND id = ?`), gameID, playerID).
		Scan(&p.ID, &p.GameID, &p.DevBuild, &pc, &pl)
	if err != nil {
		return p, notFound(err)
	}
	p.CreatedAt, p.LastSeenAt = time.UnixMilli(pc), time.UnixMilli(pl)
	return p, s.fillPlayer(ctx, &p)
}

// CreatePlayer creates a player with one alias; a dev-build player gets
// the prop META_DEV_BUILD=1. ErrConflict when the alias exists.
func (s *Store) CreatePlayer(ctx context.Context, gameID int64, service, identifier string, devBuild bool) (Alias, error) {
	now := s.ms()
	pid := NewUUID()
	var aliasID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO players (id, game_id, dev_build, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)`),
			pid, gameID, devBuild, now, now); err != nil {
			return err
		}
		if devBuild {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO player_props (player_id, key, value) VALUES (?, 'META_DEV_BUILD', '1')`), pid); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, s.q(`INSERT INTO player_aliases (game_id, player_id, service, identifier, created_at, updated_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), gameID, pid, service, identifier, now, now, now).Scan(&aliasID)
	})
	if err != nil {
		if isUniqueViolation(err) {
			return Alias{}, ErrConflict
		}
		return Alias{}, err
	}
	return s.Alias(ctx, gameID, aliasID)
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint") || strings.Contains(msg, "SQLSTATE 23505")
}

// SetPlayerProp sets (or, with nil, deletes) a player prop.
func (s *Store) SetPlayerProp(ctx context.Context, playerID, key string, value *string) error {
	if value == nil {
		_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM player_props WHERE player_id = ? AND key = ?`), playerID, key)
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO player_props (player_id, key, value) VALUES (?, ?, ?)
		ON CONFLICT (player_id, key) DO UPDATE SET value = excluded.value`), playerID, key, *value)
	return err
}

// TouchAlias records that an alias (and its player) was seen now.
func (s *Store) TouchAlias(ctx context.Context, a *Alias) error {
	now := s.ms()
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE player_aliases SET last_seen_at = ? WHERE id = ?`), now, a.ID); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE players SET last_seen_at = ? WHERE id = ?`), now, a.Player.ID); err != nil {
		return err
	}
	a.LastSeenAt, a.Player.LastSeenAt = time.UnixMilli(now), time.UnixMilli(now)
	return nil
}

// Presence loads a player's presence; ok is false when it never had one.
func (s *Store) Presence(ctx context.Context, playerID string) (Presence, bool, error) {
	p := Presence{PlayerID: playerID}
	var alias sql.NullInt64
	var updated int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT alias_id, online, custom_status, updated_at FROM player_presence WHERE player_id = ?`), playerID).
		Scan(&alias, &p.Online, &p.CustomStatus, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	p.AliasID, p.UpdatedAt = alias.Int64, time.UnixMilli(updated)
	return p, err == nil, err
}

// SetPresence changes the given fields of a player's presence (nil leaves
// a field as it is) on behalf of aliasID, and returns the presence before
// (ok false when there was none) and after.
func (s *Store) SetPresence(ctx context.Context, playerID string, aliasID int64, online *bool, customStatus *string) (prev Presence, had bool, next Presence, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		prev = Presence{PlayerID: playerID}
		var alias sql.NullInt64
		var updated int64
		e := tx.QueryRowContext(ctx, s.q(`SELECT alias_id, online, custom_status, updated_at FROM player_presence WHERE player_id = ?`), playerID).
			Scan(&alias, &prev.Online, &prev.CustomStatus, &updated)
		switch {
		case errors.Is(e, sql.ErrNoRows):
		case e != nil:
			return e
		default:
			had = true
			prev.AliasID, prev.UpdatedAt = alias.Int64, time.UnixMilli(updated)
		}
		next = prev
		next.AliasID = aliasID
		next.UpdatedAt = time.UnixMilli(s.ms())
		if online != nil {
			next.Online = *online
		}
		if customStatus != nil {
			next.CustomStatus = *customStatus
		}
		_, e = tx.ExecContext(ctx, s.q(`INSERT INTO player_presence (player_id, alias_id, online, custom_status, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (player_id) DO UPDATE SET alias_id = excluded.alias_id, online = excluded.online,
			custom_status = excluded.custom_status, updated_at = excluded.updated_at`),
			playerID, aliasID, next.Online, next.CustomStatus, next.UpdatedAt.UnixMilli())
		return e
	})
	return prev, had, next, err
}

// CreateGroup adds a player group (groups are read only over HTTP; this
// is for provisioning and tests).
func (s *Store) CreateGroup(ctx context.Context, gameID int64, name string, playerIDs ...string) (Group, error) {
	g := Group{ID: NewUUID(), Name: name}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO player_groups (id, game_id, name) VALUES (?, ?, ?)`), g.ID, gameID, name); err != nil {
			return err
		}
		for _, p := range playerIDs {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO player_group_members (group_id, player_id) VALUES (?, ?)`), g.ID, p); err != nil {
				return err
			}
		}
		return nil
	})
	return g, err
}

func (s *Store) ids(ctx context.Context, q querier, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// StalePresence is an online presence row not updated since a cutoff.
type StalePresence struct {
	GameID   int64
	PlayerID string
	AliasID  int64
}

// StaleOnlinePresence lists presence rows still online that were last
// updated before the cutoff (the stale-presence sweep).
func (s *Store) StaleOnlinePresence(ctx context.Context, before time.Time) ([]StalePresence, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.game_id, pp.player_id, pp.alias_id FROM player_presence pp JOIN players p ON p.id = pp.player_id
		WHERE pp.online = TRUE AND pp.updated_at < ? ORDER BY p.game_id, pp.player_id`), before.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	var out []StalePresence
	for rows.Next() {
		var sp StalePresence
		var alias sql.NullInt64
		if err := rows.Scan(&sp.GameID, &sp.PlayerID, &alias); err != nil {
			return nil, err
		}
		sp.AliasID = alias.Int64
		out = append(out, sp)
	}
	return out, rows.Err()
}
