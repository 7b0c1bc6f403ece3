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
