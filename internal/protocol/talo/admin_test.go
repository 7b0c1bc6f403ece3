package talo_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// TestAdmin provisions on a store alone, as the CLI does; a server opened
// on the same database then accepts the key.
func TestAdmin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "talo.db")
	st, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	a := talo.NewAdmin(st)
	if _, err := a.CreateGame(ctx, "  "); err == nil {
		t.Fatal("blank game name accepted")
	}
	game, err := a.CreateGame(ctx, "Offline")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateKey(ctx, game, []string{"read:nothing"}); err == nil {
		t.Fatal("unknown scope accepted")
	}
	if _, err := a.CreateKey(ctx, 999, []string{"*"}); err == nil {
		t.Fatal("key for a missing game")
	}
	key, err := a.CreateKey(ctx, game, []string{"*"})
	if err != nil || strings.Count(key, ".") != 2 {
		t.Fatalf("key %q %v", key, err)
	}
	revoked, _ := a.CreateKey(ctx, game, []string{"*"})
	if err := a.RevokeKey(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeKey(ctx, "12345"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown id: %v", err)
	}
	if err := a.RevokeKey(ctx, "garbage"); err == nil {
		t.Fatal("garbage revoked")
	}
	if vk, err := a.VerificationKey(ctx, game); err != nil || !strings.HasPrefix(vk, "1:") {
		t.Fatalf("verification key %q %v", vk, err)
	}
	_ = st.Close()

	e := newEnv(t, func(o *talo.Options) { o.StorePath = path })
	e.do("GET", "/v1/health-check", key, "").expect(t, 204, "")
	e.do("GET", "/v1/health-check", revoked, "").expect(t, 401, `{"message":"Authentication Error"}`)
}

// The CLI names games: names it creates are unique, and a name (or, when
// no game has that name, an id) finds the game.
func TestAdminFindsGamesByName(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "talo.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	a := talo.NewAdmin(st)
	first, err := a.CreateGameNamed(ctx, "Space Game")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateGameNamed(ctx, " Space Game "); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate name: %v", err)
	}
	second, err := a.CreateGameNamed(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"Space Game": first, "7": second} {
		if id, err := a.FindGame(ctx, name); err != nil || id != want {
			t.Errorf("FindGame(%q) = %d, %v; want %d", name, id, err, want)
		}
	}
	if id, err := a.FindGame(ctx, "1"); err != nil || id != first {
		t.Errorf("FindGame by id: %d, %v", id, err)
	}
	if _, err := a.FindGame(ctx, "Other"); err == nil || !strings.Contains(err.Error(), `no game named "Other"`) {
		t.Errorf("missing game: %v", err)
	}
	// Games created another way may share a name: the id is then needed.
	if _, err := a.CreateGame(ctx, "Space Game"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FindGame(ctx, "Space Game"); err == nil || !strings.Contains(err.Error(), "give the id") {
		t.Errorf("ambiguous name: %v", err)
	}
}
