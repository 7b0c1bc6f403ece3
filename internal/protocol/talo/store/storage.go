package store

import (
	"context"
	"database/sql"
	"time"
)

// StorageProp is one row of a channel's shared storage. Keys ending in
// "[]" are arrays with one row per value.
type StorageProp struct {
	ID                   int64
	Key                  string
	Value                string
	CreatedByAliasID     int64
	LastUpdatedByAliasID int64
	CreatedAt, UpdatedAt time.Time
}

// StorageChange is one requested change: Delete removes the key; for an
// array key Values replaces every row; otherwise Value is upserted.
type StorageChange struct {
	Key    string
	Delete bool
	Value  string
	Values []string
	Array  bool
}

func scanStorage(rows *sql.Rows) ([]StorageProp, error) {
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	out := []StorageProp{}
	for rows.Next() {
		var p StorageProp
		var cb, lb sql.NullInt64
		var c, u int64
		if err := rows.Scan(&p.ID, &p.Key, &p.Value, &cb, &lb, &c, &u); err != nil {
			return nil, err
		}
		p.CreatedByAliasID, p.LastUpdatedByAliasID = cb.Int64, lb.Int64
		p.CreatedAt, p.UpdatedAt = time.UnixMilli(c), time.UnixMilli(u)
		out = append(out, p)
	}
	return out, rows.Err()
}

const storageColumns = `id, key, value, created_by_alias_id, last_updated_by_alias_id, created_at, updated_at`

// StorageProps returns the rows of the given keys, by key then age.
func (s *Store) StorageProps(ctx context.Context, channelID int64, keys []string) ([]StorageProp, error) {
	if len(keys) == 0 {
		return []StorageProp{}, nil
	}
	args := append([]any{channelID}, stringArgs(keys)...)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+storageColumns+` FROM game_channel_storage_props
		WHERE channel_id = ? AND key IN (`+placeholders(len(keys))+`) ORDER BY key, created_at, id`), args...)
	if err != nil {
		return nil, err
	}
	return scanStorage(rows)
}

// PutStorage applies changes in one transaction on behalf of aliasID and
// returns the rows written and the rows removed.
func (s *Store) PutStorage(ctx context.Context, channelID, aliasID int64, changes []StorageChange) (upserted, deleted []StorageProp, err error) {
	upserted, deleted = []StorageProp{}, []StorageProp{}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// Concurrent writers to one channel's storage take turns (the
		// reference takes a Redis lock): on PostgreSQL by locking the
		// channel row; SQLite has a single writer anyway.
		if s.postgres {
			if _, err := tx.ExecContext(ctx, `SELECT id FROM game_channels WHERE id = $1 FOR UPDATE`, channelID); err != nil {
				return err
			}
		}
		now := s.ms()
		for _, ch := range changes {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT `+storageColumns+` FROM game_channel_storage_props WHERE channel_id = ? AND key = ? ORDER BY created_at, id`), channelID, ch.Key)
			if err != nil {
				return err
			}
			existing, err := scanStorage(rows)
			if err != nil {
				return err
			}
			switch {
			case ch.Delete || (ch.Array && len(ch.Values) == 0):
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM game_channel_storage_props WHERE channel_id = ? AND key = ?`), channelID, ch.Key); err != nil {
					return err
				}
				deleted = append(deleted, existing...)
			case ch.Array:
				created, createdBy := now, aliasID
				if len(existing) > 0 {
					created, createdBy = existing[0].CreatedAt.UnixMilli(), existing[0].CreatedByAliasID
				}
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM game_channel_storage_props WHERE channel_id = ? AND key = ?`), channelID, ch.Key); err != nil {
					return err
				}
				for _, v := range ch.Values {
					p := StorageProp{Key: ch.Key, Value: v, CreatedByAliasID: createdBy, LastUpdatedByAliasID: aliasID,
						CreatedAt: time.UnixMilli(created), UpdatedAt: time.UnixMilli(now)}
					if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO game_channel_storage_props (channel_id, key, value, created_by_alias_id,
						last_updated_by_alias_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
						channelID, p.Key, p.Value, nullID(createdBy), aliasID, created, now).Scan(&p.ID); err != nil {
						return err
					}
					upserted = append(upserted, p)
				}
			case len(existing) > 0:
				p := existing[0]
				p.Value, p.LastUpdatedByAliasID, p.UpdatedAt = ch.Value, aliasID, time.UnixMilli(now)
				if _, err := tx.ExecContext(ctx, s.q(`UPDATE game_channel_storage_props SET value = ?, last_updated_by_alias_id = ?, updated_at = ? WHERE id = ?`),
					p.Value, aliasID, now, p.ID); err != nil {
					return err
				}
				upserted = append(upserted, p)
			default:
				p := StorageProp{Key: ch.Key, Value: ch.Value, CreatedByAliasID: aliasID, LastUpdatedByAliasID: aliasID,
					CreatedAt: time.UnixMilli(now), UpdatedAt: time.UnixMilli(now)}
				if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO game_channel_storage_props (channel_id, key, value, created_by_alias_id,
					last_updated_by_alias_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
					channelID, p.Key, p.Value, aliasID, aliasID, now, now).Scan(&p.ID); err != nil {
					return err
				}
				upserted = append(upserted, p)
			}
		}
		return nil
	})
	return upserted, deleted, err
}

func stringArgs(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
