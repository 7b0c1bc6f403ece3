package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/pgtest"
)

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "talo.db")
	runSuite(t, func(t *testing.T) *Store { return open(t, Options{Path: path}) })
}

func TestPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	// Nodes starting together migrate once, one after the other.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Options{PostgresDSN: dsn})
			if err == nil {
				_ = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	runSuite(t, func(t *testing.T) *Store { return open(t, Options{PostgresDSN: dsn}) })
}

func open(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func runSuite(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	// Opening again finds every migration applied and changes nothing.
	again := openStore(t)
	if v := must[[]int](t)(again.Migrations(ctx)); !slices.Equal(v, []int{1}) {
		t.Fatalf("migrations %v", v)
	}

	t.Run("games and keys", func(t *testing.T) {
		g := must[Game](t)(s.CreateGame(ctx, "Demo"))
		if got := must[Game](t)(s.Game(ctx, g.ID)); got.Name != "Demo" || got.APISecret == "" || got.VerifyRequests {
			t.Fatalf("game %+v", got)
		}
		k := must[AccessKey](t)(s.CreateAccessKey(ctx, g.ID, []string{"read:players", "write:players"}))
		got := must[AccessKey](t)(s.AccessKey(ctx, k.ID))
		if !slices.Equal(got.Scopes, []string{"read:players", "write:players"}) || got.RevokedAt != nil || got.GameID != g.ID {
			t.Fatalf("key %+v", got)
		}
		if err := s.RevokeAccessKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if got := must[AccessKey](t)(s.AccessKey(ctx, k.ID)); got.RevokedAt == nil {
			t.Fatal("not revoked")
		}
		if err := s.RevokeAccessKey(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		v, secret, err := s.AddVerificationKey(ctx, g.ID)
		if err != nil || v != 1 || secret == "" {
			t.Fatalf("verification key %d %q %v", v, secret, err)
		}
		if v2, _, _ := s.AddVerificationKey(ctx, g.ID); v2 != 2 {
			t.Fatalf("second version %d", v2)
		}
		if got := must[string](t)(s.VerificationSecret(ctx, g.ID, 1)); got != secret {
			t.Fatal("secret differs")
		}
		if !must[Game](t)(s.Game(ctx, g.ID)).VerifyRequests {
			t.Fatal("verify_requests not set")
		}
		val := "on"
		if err := s.SetGameProp(ctx, g.ID, "mode", &val); err != nil {
			t.Fatal(err)
		}
		if p := must[[]Prop](t)(s.GameProps(ctx, g.ID)); len(p) != 1 || p[0] != (Prop{"mode", "on"}) {
			t.Fatalf("props %v", p)
		}
	})

	g := must[Game](t)(s.CreateGame(ctx, "Chat"))
	other := must[Game](t)(s.CreateGame(ctx, "Other"))
	a := must[Alias](t)(s.CreatePlayer(ctx, g.ID, "username", "ann", false))
	b := must[Alias](t)(s.CreatePlayer(ctx, g.ID, "username", "bob", true))

	t.Run("players", func(t *testing.T) {
		if _, err := s.CreatePlayer(ctx, g.ID, "username", "ann", false); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate alias: %v", err)
		}
		got := must[Alias](t)(s.FindAlias(ctx, g.ID, "username", "bob"))
		if got.ID != b.ID || !got.Player.DevBuild || len(got.Player.Props) != 1 || got.Player.Props[0] != (Prop{"META_DEV_BUILD", "1"}) {
			t.Fatalf("bob %+v", got)
		}
		if _, err := s.Alias(ctx, other.ID, a.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("alias across games: %v", err)
		}
		grp := must[Group](t)(s.CreateGroup(ctx, g.ID, "Winners", a.Player.ID))
		if p := must[Player](t)(s.Player(ctx, g.ID, a.Player.ID)); len(p.Groups) != 1 || p.Groups[0] != grp {
			t.Fatalf("groups %+v", p.Groups)
		}
		on, status := true, "busy"
		_, had, next, err := s.SetPresence(ctx, a.Player.ID, a.ID, &on, nil)
		if err != nil || had || !next.Online || next.CustomStatus != "" {
			t.Fatalf("presence %+v %v %v", next, had, err)
		}
		prev, had, next, _ := s.SetPresence(ctx, a.Player.ID, a.ID, nil, &status)
		if !had || !prev.Online || !next.Online || next.CustomStatus != "busy" {
			t.Fatalf("presence update %+v -> %+v", prev, next)
		}
	})

	t.Run("channels", func(t *testing.T) {
		c := must[Channel](t)(s.CreateChannel(ctx, Channel{GameID: g.ID, Name: "General", OwnerAliasID: a.ID, Props: []Prop{{"guild", "x"}}}))
		if c.ID == 0 || c.OwnerAliasID != a.ID || len(c.Props) != 1 {
			t.Fatalf("channel %+v", c)
		}
		priv := must[Channel](t)(s.CreateChannel(ctx, Channel{GameID: g.ID, Name: "secret", Private: true, TemporaryMembership: true}))
		if added := must[bool](t)(s.AddMember(ctx, c.ID, b.ID)); !added {
			t.Fatal("not added")
		}
		if added := must[bool](t)(s.AddMember(ctx, c.ID, b.ID)); added {
			t.Fatal("added twice")
		}
		if ids := must[[]int64](t)(s.MemberIDs(ctx, c.ID)); !slices.Equal(ids, []int64{a.ID, b.ID}) {
			t.Fatalf("members %v", ids)
		}
		if n := must[int](t)(s.MemberCount(ctx, c.ID, false)); n != 1 {
			t.Fatalf("non-dev count %d", n)
		}
		ids, total, err := s.Members(ctx, c.ID, MemberFilter{IncludeDev: true, Identifier: "bob"})
		if err != nil || total != 1 || !slices.Equal(ids, []int64{b.ID}) {
			t.Fatalf("member filter %v %d %v", ids, total, err)
		}
		list, total, err := s.ListChannels(ctx, g.ID, ChannelFilter{Search: "gEn"})
		if err != nil || total != 1 || list[0].ID != c.ID {
			t.Fatalf("search %v %d %v", list, total, err)
		}
		if _, total, _ := s.ListChannels(ctx, g.ID, ChannelFilter{Search: "ann"}); total != 1 {
			t.Fatal("owner identifier search")
		}
		if _, total, _ := s.ListChannels(ctx, g.ID, ChannelFilter{}); total != 1 {
			t.Fatal("private channel listed")
		}
		if _, total, _ := s.ListChannels(ctx, g.ID, ChannelFilter{PropKey: "guild", PropValue: "x"}); total != 1 {
			t.Fatal("prop filter")
		}
		_ = must[bool](t)(s.AddMember(ctx, priv.ID, b.ID))
		if tmp := must[[]Channel](t)(s.TemporaryChannels(ctx, g.ID, []int64{b.ID})); len(tmp) != 1 || tmp[0].ID != priv.ID {
			t.Fatalf("temporary %v", tmp)
		}
		c.Name, c.AutoCleanup = "Renamed", true
		c = must[Channel](t)(s.UpdateChannel(ctx, c, []PropChange{{Key: "guild"}, {Key: "mode", Value: ptr("pvp")}}))
		if c.Name != "Renamed" || !c.AutoCleanup || len(c.Props) != 1 || c.Props[0] != (Prop{"mode", "pvp"}) {
			t.Fatalf("updated %+v", c)
		}
		if err := s.IncrementMessages(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		up, del, err := s.PutStorage(ctx, c.ID, a.ID, []StorageChange{{Key: "k", Value: "1"}, {Key: "arr[]", Array: true, Values: []string{"x", "y"}}})
		if err != nil || len(up) != 3 || len(del) != 0 {
			t.Fatalf("storage %v %v %v", up, del, err)
		}
		up, del, _ = s.PutStorage(ctx, c.ID, b.ID, []StorageChange{{Key: "k", Value: "2"}, {Key: "arr[]", Delete: true}})
		if len(up) != 1 || up[0].CreatedByAliasID != a.ID || up[0].LastUpdatedByAliasID != b.ID || len(del) != 2 {
			t.Fatalf("storage update %+v %+v", up, del)
		}
		if p := must[[]StorageProp](t)(s.StorageProps(ctx, c.ID, []string{"k", "arr[]"})); len(p) != 1 || p[0].Value != "2" {
			t.Fatalf("storage read %+v", p)
		}
		// Concurrent writes of one new key leave one row.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := s.PutStorage(ctx, c.ID, a.ID, []StorageChange{{Key: "race", Value: fmt.Sprint(i)}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if p := must[[]StorageProp](t)(s.StorageProps(ctx, c.ID, []string{"race"})); len(p) != 1 {
			t.Fatalf("concurrent writes left %d rows", len(p))
		}
		if removed := must[bool](t)(s.RemoveMember(ctx, c.ID, b.ID)); !removed {
			t.Fatal("not removed")
		}
		if err := s.DeleteChannel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Channel(ctx, g.ID, c.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted channel: %v", err)
		}
	})

	t.Run("relationships", func(t *testing.T) {
		sub := must[Subscription](t)(s.CreateSubscription(ctx, a.ID, b.ID, "bidirectional", false))
		if _, err := s.CreateSubscription(ctx, a.ID, b.ID, "bidirectional", false); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := s.ConfirmSubscription(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		if ids := must[[]int64](t)(s.ConfirmedSubscriberIDs(ctx, b.ID)); !slices.Equal(ids, []int64{a.ID}) {
			t.Fatalf("subscribers %v", ids)
		}
		yes := true
		list, total, err := s.ListSubscriptions(ctx, SubscriptionFilter{SubscribedToID: b.ID, Confirmed: &yes})
		if err != nil || total != 1 || list[0].ID != sub.ID {
			t.Fatalf("list %v %d %v", list, total, err)
		}
		if err := s.DeleteSubscription(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Subscription(ctx, sub.ID); !errors.Is(err, ErrNotFound) {
			t.Fatal("not deleted")
		}
	})
}

func ptr[T any](v T) *T { return &v }
