package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Channel is a game channel.
type Channel struct {
	ID                  int64
	GameID              int64
	Name                string
	OwnerAliasID        int64 // 0: no owner
	TotalMessages       int64
	AutoCleanup         bool
	Private             bool
	TemporaryMembership bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
	Props               []Prop
}

// PropChange sets a prop, or deletes it when Value is nil.
type PropChange struct {
	Key   string
	Value *string
}

const channelColumns = `c.id, c.game_id, c.name, c.owner_alias_id, c.total_messages, c.auto_cleanup, c.private,
	c.temporary_membership, c.created_at, c.updated_at`

func scanChannel(row interface{ Scan(...any) error }) (Channel, error) {
	var c Channel
	var owner sql.NullInt64
	var created, updated int64
	err := row.Scan(&c.ID, &c.GameID, &c.Name, &owner, &c.TotalMessages, &c.AutoCleanup, &c.Private,
		&c.TemporaryMembership, &created, &updated)
	c.OwnerAliasID = owner.Int64
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return c, err
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// CreateChannel inserts a channel with its props; a non-zero owner is
// also its first member.
func (s *Store) CreateChannel(ctx context.Context, c Channel) (Channel, error) {
	now := s.ms()
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO game_channels (game_id, name, owner_alias_id, auto_cleanup, private, temporary_membership, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), c.GameID, c.Name, nullID(c.OwnerAliasID), c.AutoCleanup, c.Private,
			c.TemporaryMembership, now, now).Scan(&c.ID)
		if err != nil {
			return err
		}
		for _, p := range c.Props {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO game_channel_props (channel_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value`), c.ID, p.Key, p.Value); err != nil {
				return err
			}
		}
		if c.OwnerAliasID != 0 {
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO game_channel_members (channel_id, alias_id, joined_at) VALUES (?, ?, ?)`), c.ID, c.OwnerAliasID, now)
		}
		return err
	})
	if err != nil {
		return c, err
	}
	return s.Channel(ctx, c.GameID, c.ID)
}

// Channel loads a channel of the game with its props.
func (s *Store) Channel(ctx context.Context, gameID, id int64) (Channel, error) {
	c, err := scanChannel(s.db.QueryRowContext(ctx, s.q(`SELECT `+channelColumns+` FROM game_channels c WHERE c.game_id = ? AND c.id = ?`), gameID, id))
	if err != nil {
		return c, notFound(err)
	}
	c.Props, err = s.props(ctx, s.db, `SELECT key, value FROM game_channel_props WHERE channel_id = ? ORDER BY key`, c.ID)
	return c, err
}

// ChannelFilter narrows ListChannels.
type ChannelFilter struct {
	Search         string // name or owner identifier contains (case-insensitive)
	PropKey        string
	PropValue      string // only with PropKey
	MemberAliasID  int64  // only channels this alias is a member of
	IncludePrivate bool
	Offset, Limit  int // Limit 0: all
}

// ListChannels lists a game's channels, most messages first, and the
// total count matching the filter.
func (s *Store) ListChannels(ctx context.Context, gameID int64, f ChannelFilter) ([]Channel, int, error) {
	where := []string{"c.game_id = ?"}
	args := []any{gameID}
	if !f.IncludePrivate {
		where = append(where, "c.private = FALSE")
	}
	if f.Search != "" {
		where = append(where, `(LOWER(c.name) LIKE ? OR EXISTS (SELECT 1 FROM player_aliases o WHERE o.id = c.owner_alias_id AND LOWER(o.identifier) LIKE ?))`)
		pat := "%" + strings.ToLower(f.Search) + "%"
		args = append(args, pat, pat)
	}
	if f.PropKey != "" {
		if f.PropValue != "" {
			where = append(where, `EXISTS (SELECT 1 FROM game_channel_props p WHERE p.channel_id = c.id AND p.key = ? AND p.value = ?)`)
			args = append(args, f.PropKey, f.PropValue)
		} else {
			where = append(where, `EXISTS (SELECT 1 FROM game_channel_props p WHERE p.channel_id = c.id AND p.key = ?)`)
			args = append(args, f.PropKey)
		}
	}
	if f.MemberAliasID != 0 {
		where = append(where, `EXISTS (SELECT 1 FROM game_channel_members m WHERE m.channel_id = c.id AND m.alias_id = ?)`)
		args = append(args, f.MemberAliasID)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM game_channels c WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	query := `SELECT ` + channelColumns + ` FROM game_channels c WHERE ` + cond + ` ORDER BY c.total_messages DESC, c.id`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, 0, err
	}
	out := []Channel{}
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			_ = rows.Close() // the scan error is the one to report
			return nil, 0, err
		}
		out = append(out, c)
	}
	_ = rows.Close() // a read-only query: rows.Err reports its failures
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	for i := range out {
		if out[i].Props, err = s.props(ctx, s.db, `SELECT key, value FROM game_channel_props WHERE channel_id = ? ORDER BY key`, out[i].ID); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// UpdateChannel writes a channel's fields and applies prop changes.
func (s *Store) UpdateChannel(ctx context.Context, c Channel, props []PropChange) (Channel, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE game_channels SET name = ?, owner_alias_id = ?, auto_cleanup = ?, private = ?,
			temporary_membership = ?, updated_at = ? WHERE id = ?`), c.Name, nullID(c.OwnerAliasID), c.AutoCleanup, c.Private,
			c.TemporaryMembership, s.ms(), c.ID); err != nil {
			return err
		}
		for _, p := range props {
			var err error
			if p.Value == nil {
				_, err = tx.ExecContext(ctx, s.q(`DELETE FROM game_channel_props WHERE channel_id = ? AND key = ?`), c.ID, p.Key)
			} else {
				_, err = tx.ExecContext(ctx, s.q(`INSERT INTO game_channel_props (channel_id, key, value) VALUES (?, ?, ?)
					ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value`), c.ID, p.Key, *p.Value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	return s.Channel(ctx, c.GameID, c.ID)
}

// SetChannelOwner changes only the owner (0 clears it).
func (s *Store) SetChannelOwner(ctx context.Context, channelID, aliasID int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE game_channels SET owner_alias_id = ?, updated_at = ? WHERE id = ?`), nullID(aliasID), s.ms(), channelID)
	return err
}

// DeleteChannel removes a channel with its members, props and storage.
func (s *Store) DeleteChannel(ctx context.Context, channelID int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM game_channel_members WHERE channel_id = ?`,
			`DELETE FROM game_channel_props WHERE channel_id = ?`,
			`DELETE FROM game_channel_storage_props WHERE channel_id = ?`,
			`DELETE FROM game_channels WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.q(q), channelID); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddMember adds an alias to a channel and reports whether it was new.
func (s *Store) AddMember(ctx context.Context, channelID, aliasID int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO game_channel_members (channel_id, alias_id, joined_at) VALUES (?, ?, ?)
		ON CONFLICT (channel_id, alias_id) DO NOTHING`), channelID, aliasID, s.ms())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RemoveMember removes an alias from a channel and reports whether it was a member.
func (s *Store) RemoveMember(ctx context.Context, channelID, aliasID int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM game_channel_members WHERE channel_id = ? AND alias_id = ?`), channelID, aliasID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// IsMember reports whether an alias is a member of a channel.
func (s *Store) IsMember(ctx context.Context, channelID, aliasID int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM game_channel_members WHERE channel_id = ? AND alias_id = ?`), channelID, aliasID).Scan(&n)
	return n > 0, err
}

// MemberIDs lists a channel's member alias ids, oldest member first.
func (s *Store) MemberIDs(ctx context.Context, channelID int64) ([]int64, error) {
	return s.ids(ctx, s.db, `SELECT alias_id FROM game_channel_members WHERE channel_id = ? ORDER BY joined_at, alias_id`, channelID)
}

// MemberCount counts a channel's members; dev-build players only when includeDev.
func (s *Store) MemberCount(ctx context.Context, channelID int64, includeDev bool) (int, error) {
	q := `SELECT COUNT(*) FROM game_channel_members m JOIN player_aliases a ON a.id = m.alias_id JOIN players p ON p.id = a.player_id
		WHERE m.channel_id = ?`
	if !includeDev {
		q += ` AND p.dev_build = FALSE`
	}
	var n int
	err := s.db.QueryRowContext(ctx, s.q(q), channelID).Scan(&n)
	return n, err
}

// MemberFilter narrows Members.
type MemberFilter struct {
	PlayerID, Identifier string
	AliasID              int64
	PropKey, PropValue   string
	GroupID              string
	IncludeDev           bool
	Offset, Limit        int
}

// Members lists the alias ids of a channel's members matching f, and
// their total count.
func (s *Store) Members(ctx context.Context, channelID int64, f MemberFilter) ([]int64, int, error) {
	where := []string{"m.channel_id = ?"}
	args := []any{channelID}
	if !f.IncludeDev {
		where = append(where, "p.dev_build = FALSE")
	}
	if f.PlayerID != "" {
		where, args = append(where, "p.id = ?"), append(args, f.PlayerID)
	}
	if f.AliasID != 0 {
		where, args = append(where, "a.id = ?"), append(args, f.AliasID)
	}
	if f.Identifier != "" {
		where, args = append(where, "a.identifier = ?"), append(args, f.Identifier)
	}
	if f.PropKey != "" {
		if f.PropValue != "" {
			where = append(where, "EXISTS (SELECT 1 FROM player_props pp WHERE pp.player_id = p.id AND pp.key = ? AND pp.value = ?)")
			args = append(args, f.PropKey, f.PropValue)
		} else {
			where = append(where, "EXISTS (SELECT 1 FROM player_props pp WHERE pp.player_id = p.id AND pp.key = ?)")
			args = append(args, f.PropKey)
		}
	}
	if f.GroupID != "" {
		where = append(where, "EXISTS (SELECT 1 FROM player_group_members g WHERE g.player_id = p.id AND g.group_id = ?)")
		args = append(args, f.GroupID)
	}
	from := ` FROM game_channel_members m JOIN player_aliases a ON a.id = m.alias_id JOIN players p ON p.id = a.player_id WHERE ` + strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*)`+from), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q := `SELECT a.id` + from + ` ORDER BY m.joined_at, a.id`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	ids, err := s.ids(ctx, s.db, q, args...)
	return ids, total, err
}

// TemporaryChannels lists the temporary-membership channels that any of
// the aliases belongs to, each once.
func (s *Store) TemporaryChannels(ctx context.Context, gameID int64, aliasIDs []int64) ([]Channel, error) {
	if len(aliasIDs) == 0 {
		return nil, nil
	}
	ids, err := s.ids(ctx, s.db, `SELECT DISTINCT c.id FROM game_channels c JOIN game_channel_members m ON m.channel_id = c.id
		WHERE c.game_id = ? AND c.temporary_membership = TRUE AND m.alias_id IN (`+placeholders(len(aliasIDs))+`) ORDER BY c.id`,
		append([]any{gameID}, int64Args(aliasIDs)...)...)
	if err != nil {
		return nil, err
	}
	out := make([]Channel, 0, len(ids))
	for _, id := range ids {
		c, err := s.Channel(ctx, gameID, id)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, c)
	}
	return out, nil
}

// IncrementMessages adds one to a channel's message count.
func (s *Store) IncrementMessages(ctx context.Context, channelID int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE game_channels SET total_messages = total_messages + 1 WHERE id = ?`), channelID)
	return err
}
