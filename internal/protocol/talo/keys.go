package talo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// ScopeFullAccess grants every scope.
const ScopeFullAccess = "*"

// Scopes lists every scope a key may hold (spec section 7), for the CLI.
func Scopes() []string { return slices.Clone(allScopes) }

var allScopes = []string{
	ScopeFullAccess,
	"read:players", "write:players", "read:playerPresence", "write:playerPresence",
	"read:gameChannels", "write:gameChannels", "read:playerRelationships", "write:playerRelationships",
	"read:playerBroadcasts", "write:playerBroadcasts", "read:playerGroups", "read:gameConfig", "write:gameConfig",
	"read:events", "write:events", "read:leaderboards", "write:leaderboards", "read:gameSaves", "write:gameSaves",
	"read:gameStats", "write:gameStats", "read:gameFeedback", "write:gameFeedback", "write:continuityRequests",
}

// hasScopes reports the scopes of want that held lacks ("*" has them all).
func missingScopes(held, want []string) []string {
	if slices.Contains(held, ScopeFullAccess) {
		return nil
	}
	var missing []string
	for _, w := range want {
		if !slices.Contains(held, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

func hasScope(held []string, want string) bool { return len(missingScopes(held, []string{want})) == 0 }

// Admin provisions games and keys on a store, without a running server
// (the CLI's "switchboard talo ..." verbs open the store and use it).
type Admin struct{ st *store.Store }

// NewAdmin returns an Admin on st.
func NewAdmin(st *store.Store) *Admin { return &Admin{st: st} }

// CreateGame is Admin.CreateGame on the server's store.
func (s *Server) CreateGame(ctx context.Context, name string) (int64, error) {
	return NewAdmin(s.st).CreateGame(ctx, name)
}

// CreateKey is Admin.CreateKey on the server's store.
func (s *Server) CreateKey(ctx context.Context, gameID int64, scopes []string) (string, error) {
	return NewAdmin(s.st).CreateKey(ctx, gameID, scopes)
}

// RevokeKey is Admin.RevokeKey on the server's store.
func (s *Server) RevokeKey(ctx context.Context, keyOrID string) error {
	return NewAdmin(s.st).RevokeKey(ctx, keyOrID)
}

// VerificationKey is Admin.VerificationKey on the server's store.
func (s *Server) VerificationKey(ctx context.Context, gameID int64) (string, error) {
	return NewAdmin(s.st).VerificationKey(ctx, gameID)
}

// CreateGame adds a game and returns its id.
func (a *Admin) CreateGame(ctx context.Context, name string) (int64, error) {
	if strings.TrimSpace(name) == "" {
		return 0, errors.New("talo: a game needs a name")
	}
	g, err := a.st.CreateGame(ctx, strings.TrimSpace(name))
	return g.ID, err
}

// CreateGameNamed adds a game like CreateGame, refusing a name another
// game has: the CLI finds games by name.
func (a *Admin) CreateGameNamed(ctx context.Context, name string) (int64, error) {
	ids, err := a.st.GameIDsByName(ctx, strings.TrimSpace(name))
	if err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		return 0, fmt.Errorf("talo: a game named %q already exists (id %d)", strings.TrimSpace(name), ids[0])
	}
	return a.CreateGame(ctx, name)
}

// FindGame returns the id of the game with this name, or, when no game
// has that name and it is a number, of the game with that id.
func (a *Admin) FindGame(ctx context.Context, name string) (int64, error) {
	name = strings.TrimSpace(name)
	ids, err := a.st.GameIDsByName(ctx, name)
	if err != nil {
		return 0, err
	}
	switch {
	case len(ids) == 1:
		return ids[0], nil
	case len(ids) > 1:
		return 0, fmt.Errorf("talo: %d games are named %q; give the id instead", len(ids), name)
	}
	if id, err := strconv.ParseInt(name, 10, 64); err == nil {
		if _, err := a.st.Game(ctx, id); err == nil {
			return id, nil
		}
	}
	return 0, fmt.Errorf("talo: no game named %q", name)
}

// CreateKey records an access key for a game with the given scopes and
// returns it: an HS256 JWT {"sub": <key id>, "api": true, "iat": <created
// seconds>} signed with the game's secret, as the reference mints them.
func (a *Admin) CreateKey(ctx context.Context, gameID int64, scopes []string) (string, error) {
	if len(scopes) == 0 {
		return "", errors.New("talo: a key needs at least one scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(allScopes, sc) {
			return "", fmt.Errorf("talo: unknown scope %q", sc)
		}
	}
	g, err := a.st.Game(ctx, gameID)
	if err != nil {
		return "", fmt.Errorf("talo: game %d: %w", gameID, err)
	}
	k, err := a.st.CreateAccessKey(ctx, gameID, scopes)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": k.ID, "api": true, "iat": k.CreatedAt.Unix()})
	return tok.SignedString([]byte(g.APISecret))
}

// RevokeKey revokes a key given as its JWT or its numeric id; sockets
// opened with it keep running (the reference checks keys at connect), new
// tickets and HTTP calls are refused at once.
func (a *Admin) RevokeKey(ctx context.Context, keyOrID string) error {
	id, err := strconv.ParseInt(keyOrID, 10, 64)
	if err != nil {
		if id, err = keySubject(keyOrID); err != nil {
			return err
		}
	}
	return a.st.RevokeAccessKey(ctx, id)
}

// VerificationKey creates a new request-signing key for a game, turns
// signing on and returns "<version>:<secret>".
func (a *Admin) VerificationKey(ctx context.Context, gameID int64) (string, error) {
	v, secret, err := a.st.AddVerificationKey(ctx, gameID)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(v) + ":" + secret, nil
}

var errBadKey = errors.New("talo: invalid access key")

// keySubject reads the key id from a JWT without verifying it (the game's
// secret, needed to verify, is found through the key).
func keySubject(token string) (int64, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, errBadKey
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, errBadKey
	}
	var c struct {
		Sub json.RawMessage `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return 0, errBadKey
	}
	var n json.Number
	if json.Unmarshal(c.Sub, &n) == nil {
		if id, err := n.Int64(); err == nil {
			return id, nil
		}
	}
	var sub string
	if json.Unmarshal(c.Sub, &sub) == nil {
		if id, err := strconv.ParseInt(sub, 10, 64); err == nil {
			return id, nil
		}
	}
	return 0, errBadKey
}

// authenticate checks a bearer token: the key exists, is not revoked, and
// the JWT verifies with its game's secret.
func (s *Server) authenticate(ctx context.Context, token string) (store.AccessKey, store.Game, error) {
	id, err := keySubject(token)
	if err != nil {
		return store.AccessKey{}, store.Game{}, err
	}
	k, err := s.st.AccessKey(ctx, id)
	if err != nil {
		return k, store.Game{}, errBadKey
	}
	if k.RevokedAt != nil {
		return k, store.Game{}, errBadKey
	}
	g, err := s.st.Game(ctx, k.GameID)
	if err != nil {
		return k, g, errBadKey
	}
	_, err = jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(g.APISecret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		return k, g, errBadKey
	}
	return k, g, nil
}

// SetLiveConfig sets (or, with nil, deletes) a live-config prop of a game
// and pushes v1.live-config.updated (props without META_ keys) to every
// socket of the game whose key holds read:gameConfig, identified or not.
// It stands in for the reference's dashboard game update.
func (s *Server) SetLiveConfig(ctx context.Context, gameID int64, key string, value *string) error {
	if err := s.st.SetGameProp(ctx, gameID, key, value); err != nil {
		return err
	}
	props, err := s.st.GameProps(ctx, gameID)
	if err != nil {
		return err
	}
	cfg := []propJSON{}
	for _, p := range props {
		if !strings.HasPrefix(p.Key, "META_") {
			cfg = append(cfg, propJSON{p.Key, p.Value})
		}
	}
	s.publish(ctx, gameID, chanConfig, encodeRes("v1.live-config.updated", map[string]any{"config": cfg}))
	return nil
}
