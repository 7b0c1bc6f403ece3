package pusher

// subSet holds one connection's subscriptions. Most connections hold one to
// a few channels, and a Go map costs 256 bytes for its first entry (measured
// with TestMemoryPerIdleConnection in internal/server: 208 B of buckets plus
// a 48 B header per connection, 14% of the live heap per idle connection),
// so up to smallSubs names live in a slice searched linearly; past that a
// map takes over, so a connection at the 1,000-subscription limit still
// looks a channel up in constant time.
type subSet struct {
	small []*subscription
	big   map[string]*subscription
}

// smallSubs is where the slice gives way to a map.
const smallSubs = 8

func (s *subSet) get(name string) *subscription {
	if s.big != nil {
		return s.big[name]
	}
	for _, sub := range s.small {
		if sub.name == name {
			return sub
		}
	}
	return nil
}

// getBytes is get for a name still in the client's frame: the map lookup
// with string(name) and the comparisons do not allocate.
func (s *subSet) getBytes(name []byte) *subscription {
	if s.big != nil {
		return s.big[string(name)]
	}
	for _, sub := range s.small {
		if sub.name == string(name) {
			return sub
		}
	}
	return nil
}

func (s *subSet) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

// add stores sub, replacing one of the same name.
func (s *subSet) add(sub *subscription) {
	if s.big != nil {
		s.big[sub.name] = sub
		return
	}
	for i, old := range s.small {
		if old.name == sub.name {
			s.small[i] = sub
			return
		}
	}
	if len(s.small) < smallSubs {
		s.small = append(s.small, sub)
		return
	}
	s.big = make(map[string]*subscription, 2*smallSubs)
	for _, old := range s.small {
		s.big[old.name] = old
	}
	s.big[sub.name] = sub
	s.small = nil
}

// remove deletes name and returns what was stored under it, or nil.
func (s *subSet) remove(name string) *subscription {
	if s.big != nil {
		sub := s.big[name]
		delete(s.big, name)
		return sub
	}
	for i, sub := range s.small {
		if sub.name == name {
			last := len(s.small) - 1
			s.small[i] = s.small[last]
			s.small[last] = nil
			s.small = s.small[:last]
			return sub
		}
	}
	return nil
}

// list returns every subscription in a new slice.
func (s *subSet) list() []*subscription {
	out := make([]*subscription, 0, s.len())
	if s.big != nil {
		for _, sub := range s.big {
			out = append(out, sub)
		}
		return out
	}
	return append(out, s.small...)
}
