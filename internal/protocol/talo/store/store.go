// Package store keeps Talo's durable state: games, access keys, players and
// their aliases, props, groups (read only), game channels with their
// members, props and shared storage, presence and relationships.
//
// SQLite (modernc.org/sqlite, no cgo) is the default, in a file named by
// Options.Path; PostgreSQL (pgx through database/sql) is used when
// Options.PostgresDSN is set. The schema is created and migrated on Open
// from embedded, versioned SQL files (one set per dialect) recorded in a
// schema_migrations table. Queries are written once with ? placeholders and
// rebound to $n for PostgreSQL. Times are stored as Unix milliseconds.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

//go:embed migrations
var migrationFiles embed.FS

// ErrNotFound is returned when a row does not exist (in the given game).
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a unique row already exists.
var ErrConflict = errors.New("store: already exists")

// Options say where the data lives.
type Options struct {
	// Path is the SQLite database file (created when missing); default
	// "talo.db".
	Path string
	// PostgresDSN, when set, selects PostgreSQL (a pgx connection string
	// or URL) instead of SQLite.
	PostgresDSN string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Store is the database. Its methods are safe for concurrent use.
type Store struct {
	db       *sql.DB
	postgres bool
	now      func() time.Time
}

// Open connects, creates the schema when needed and applies every
// migration not yet recorded.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{now: o.Now}
	var err error
	if o.PostgresDSN != "" {
		s.postgres = true
		s.db, err = sql.Open("pgx", o.PostgresDSN)
	} else {
		p := o.Path
		if p == "" {
			p = "talo.db"
		}
		q := url.Values{}
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "journal_mode(WAL)")
		s.db, err = sql.Open("sqlite", "file:"+p+"?"+q.Encode())
		// One writer at a time is all SQLite allows; a single connection
		// turns would-be SQLITE_BUSY errors into waiting in line.
		s.db.SetMaxOpenConns(1)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string {
	if s.postgres {
		return "postgres"
	}
	return "sqlite"
}

// migrationLockID is the PostgreSQL advisory lock that serialises
// migrations when several nodes start at once on one database.
const migrationLockID = 0x7a1057

func (s *Store) migrate(ctx context.Context) error {
	if s.postgres {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer func() { _ = conn.Close() }() // returns it to the pool; nothing to report
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockID)
		}()
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: schema_migrations: %w", err)
	}
	dir := "migrations/" + s.Dialect()
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s: bad version", name)
		}
		body, err := migrationFiles.ReadFile(path.Join(dir, name))
		if err != nil {
			return err
		}
		if err := s.apply(ctx, v, string(body)); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
	}
	return nil
}

// apply runs one migration in a transaction unless it is recorded; a
// concurrent Open racing on the same version loses on the primary key and
// rolls back.
func (s *Store) apply(ctx context.Context, version int, body string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		// Statements are split at semicolons: a migration must not have
		// one inside a literal.
		for _, stmt := range strings.Split(body, ";") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, s.ms())
		return err
	})
}

func stripComments(stmt string) string {
	var b strings.Builder
	for _, line := range strings.Split(stmt, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Migrations lists the applied versions (tests, operators).
func (s *Store) Migrations(ctx context.Context) ([]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// q rebinds ? placeholders to $1, $2... for PostgreSQL. Queries here never
// contain a literal question mark.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) ms() int64 { return s.now().UnixMilli() }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
