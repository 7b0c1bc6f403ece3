package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Game is one game (a Talo tenant).
type Game struct {
	ID   int64
	Name string
	// APISecret signs the game's access keys (HS256).
	APISecret          string
	VerifyRequests     bool
	DisplayNamePropKey string
	CreatedAt          time.Time
}

// Prop is a key/value pair (game, player and channel props).
type Prop struct {
	Key   string
	Value string
}

// AccessKey is an API key's record; the JWT itself is not stored.
type AccessKey struct {
	ID        int64
	GameID    int64
	Scopes    []string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// CreateGame adds a game with a fresh API secret.
func (s *Store) CreateGame(ctx context.Context, name string) (Game, error) {
	g := Game{Name: name, APISecret: randomHex(32), CreatedAt: time.UnixMilli(s.ms())}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO games (name, api_secret, created_at) VALUES (?, ?, ?) RETURNING id`),
		name, g.APISecret, g.CreatedAt.UnixMilli()).Scan(&g.ID)
	return g, err
}

// Game loads a game.
func (s *Store) Game(ctx context.Context, id int64) (Game, error) {
	var g Game
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, name, api_secret, verify_requests, display_name_prop_key, created_at FROM games WHERE id = ?`), id).
		Scan(&g.ID, &g.Name, &g.APISecret, &g.VerifyRequests, &g.DisplayNamePropKey, &created)
	g.CreatedAt = time.UnixMilli(created)
	return g, notFound(err)
}

// GameIDsByName lists the ids of the games with this exact name, oldest
// first (names are not unique in the schema; the CLI refuses duplicates).
func (s *Store) GameIDsByName(ctx context.Context, name string) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM games WHERE name = ? ORDER BY id`), name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// SetDisplayNamePropKey names the player prop shown as an alias's displayName.
func (s *Store) SetDisplayNamePropKey(ctx context.Context, gameID int64, key string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE games SET display_name_prop_key = ? WHERE id = ?`), key, gameID)
	return err
}

// AddVerificationKey creates the game's next request-signing key and turns
// request verification on. It returns the key's version and secret.
func (s *Store) AddVerificationKey(ctx context.Context, gameID int64) (version int, secret string, err error) {
	secret = randomHex(32)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM games WHERE id = ?`), gameID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return ErrNotFound
		}
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(version), 0) + 1 FROM verification_keys WHERE game_id = ?`), gameID).Scan(&version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO verification_keys (game_id, version, secret, created_at) VALUES (?, ?, ?, ?)`), gameID, version, secret, s.ms()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE games SET verify_requests = TRUE WHERE id = ?`), gameID)
		return err
	})
	return version, secret, err
}

// VerificationSecret returns the secret of one key version.
func (s *Store) VerificationSecret(ctx context.Context, gameID int64, version int) (string, error) {
	var secret string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT secret FROM verification_keys WHERE game_id = ? AND version = ?`), gameID, version).Scan(&secret)
	return secret, notFound(err)
}

// CreateAccessKey records a key with the given scopes.
func (s *Store) CreateAccessKey(ctx context.Context, gameID int64, scopes []string) (AccessKey, error) {
	k := AccessKey{GameID: gameID, Scopes: scopes, CreatedAt: time.UnixMilli(s.ms() / 1000 * 1000)}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO access_keys (game_id, scopes, created_at) VALUES (?, ?, ?) RETURNING id`),
		gameID, strings.Join(scopes, " "), k.CreatedAt.UnixMilli()).Scan(&k.ID)
	return k, err
}

// AccessKey loads a key record (revoked or not).
func (s *Store) AccessKey(ctx context.Context, id int64) (AccessKey, error) {
	var k AccessKey
	var scopes string
	var created int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, game_id, scopes, created_at, revoked_at FROM access_keys WHERE id = ?`), id).
		Scan(&k.ID, &k.GameID, &scopes, &created, &revoked)
	if err != nil {
		return k, notFound(err)
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt = time.UnixMilli(created)
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64)
		k.RevokedAt = &t
	}
	return k, nil
}

// RevokeAccessKey marks a key revoked; ErrNotFound when there is none.
func (s *Store) RevokeAccessKey(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), s.ms(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.AccessKey(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// GameProps is the game's live config, ordered by key.
func (s *Store) GameProps(ctx context.Context, gameID int64) ([]Prop, error) {
	return s.props(ctx, s.db, `SELECT key, value FROM game_props WHERE game_id = ? ORDER BY key`, gameID)
}

// SetGameProp sets (or, with a nil value, deletes) one live-config prop.
func (s *Store) SetGameProp(ctx context.Context, gameID int64, key string, value *string) error {
	if value == nil {
		_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM game_props WHERE game_id = ? AND key = ?`), gameID, key)
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO game_props (game_id, key, value) VALUES (?, ?, ?)
		ON CONFLICT (game_id, key) DO UPDATE SET value = excluded.value`), gameID, key, *value)
	return err
}

func (s *Store) props(ctx context.Context, q querier, query string, args ...any) ([]Prop, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	out := []Prop{}
	for rows.Next() {
		var p Prop
		if err := rows.Scan(&p.Key, &p.Value); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
