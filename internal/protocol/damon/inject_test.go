package damon

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
)

// An injected EVENT reaches the group's identified members with a fresh id
// each, like a client's; other groups get nothing; IDENTIFY and broken
// documents are refused.
func TestInjectRoutesLikeAClient(t *testing.T) {
	e := newEnv(t, nil)
	a, b, c := e.dialTCP("A"), e.dialTCP("B"), e.dialTCP("C")
	a.identify("g1")
	b.identify("g1")
	c.identify("g2")
	if err := e.srv.Inject([]byte(`{"op":0,"event":"FROM_CONSOLE","data":{"n":1},"intent":{"target":"GROUP","identifier":"g1"}}`)); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range []*client{a, b} {
		id, rest := idOf(t, r.next())
		if rest != `{"op":0,"event":"FROM_CONSOLE","data":{"n":1},"intent":{"target":"GROUP","identifier":"g1"},"id":"ID"}` || ids[id] {
			t.Fatalf("%s got %s", r.name, rest)
		}
		ids[id] = true
	}
	c.nothingFrom()
	if err := e.srv.Inject([]byte(`{"op":1,"data":{"group":"g1","token":"secret"}}`)); !errors.Is(err, ErrNotForwardable) {
		t.Fatalf("IDENTIFY: %v", err)
	}
	var r wire.Reason
	if err := e.srv.Inject([]byte(`{"op":0,`)); !errors.As(err, &r) || !strings.HasPrefix(err.Error(), "damon: ") {
		t.Fatalf("broken document: %v", err)
	}
}
