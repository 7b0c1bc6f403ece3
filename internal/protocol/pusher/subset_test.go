package pusher

import (
	"strconv"
	"testing"
)

// TestSubSetAcrossTheMapSwitch checks lookups, replacement, removal and the
// listing on both sides of smallSubs.
func TestSubSetAcrossTheMapSwitch(t *testing.T) {
	var s subSet
	const n = 3 * smallSubs
	for i := range n {
		name := "ch-" + strconv.Itoa(i)
		s.add(&subscription{name: name})
		if s.len() != i+1 {
			t.Fatalf("after adding %s: len %d", name, s.len())
		}
		for j := 0; j <= i; j++ {
			if got := s.get("ch-" + strconv.Itoa(j)); got == nil || got.name != "ch-"+strconv.Itoa(j) {
				t.Fatalf("after adding %s: get ch-%d = %v", name, j, got)
			}
		}
		if s.get("ch-"+strconv.Itoa(i+1)) != nil {
			t.Fatalf("ch-%d found before it was added", i+1)
		}
	}
	repl := &subscription{name: "ch-2", member: "u"}
	s.add(repl)
	if s.len() != n || s.get("ch-2") != repl {
		t.Fatalf("replace: len %d, get %v", s.len(), s.get("ch-2"))
	}
	if got := s.remove("ch-2"); got != repl {
		t.Fatalf("remove returned %v", got)
	}
	if s.remove("ch-2") != nil || s.get("ch-2") != nil || s.len() != n-1 {
		t.Fatal("ch-2 still there after remove")
	}
	seen := map[string]bool{}
	for _, sub := range s.list() {
		seen[sub.name] = true
	}
	if len(seen) != n-1 || seen["ch-2"] {
		t.Fatalf("list: %v", seen)
	}

	var small subSet
	a, b, c := &subscription{name: "a"}, &subscription{name: "b"}, &subscription{name: "c"}
	small.add(a)
	small.add(b)
	small.add(c)
	if small.remove("a") != a || small.get("b") != b || small.get("c") != c || small.get("a") != nil || small.len() != 2 {
		t.Fatal("remove from the slice lost another entry")
	}
	if small.remove("zzz") != nil {
		t.Fatal("removing an unknown name returned something")
	}
}
