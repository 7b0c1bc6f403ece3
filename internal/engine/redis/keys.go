package redisengine

import (
	"errors"
	"strconv"
	"strings"
)

// keys names every Redis key and pub/sub channel the engine uses, all under
// one prefix so that several clusters (or test runs) share a server without
// seeing each other.
//
// Per-channel keys carry the hash tag {len(ns):ns:name}: the length makes
// the (namespace, name) split unambiguous (namespaces such as "dcl:room"
// contain colons), and the tag keeps a channel's keys in one slot.
type keys struct{ prefix string }

func tag(ns, name string) string {
	return "{" + strconv.Itoa(len(ns)) + ":" + ns + ":" + name + "}"
}

// Occupancy: hash node -> count, "_t" -> total.
func (k keys) occupancy(ns, ch string) string { return k.prefix + "o:" + tag(ns, ch) }

// Occupied channels of a namespace: a zset of names, all score 0, so that a
// prefix query is a ZRANGEBYLEX.
func (k keys) occupied(ns string) string { return k.prefix + "oi:" + strconv.Itoa(len(ns)) + ":" + ns }

// Presence: user -> info; set of user\0node; user -> number of nodes.
func (k keys) presence(ns, ch string) string      { return k.prefix + "p:" + tag(ns, ch) }
func (k keys) presenceNodes(ns, ch string) string { return k.prefix + "pn:" + tag(ns, ch) }
func (k keys) presenceCount(ns, ch string) string { return k.prefix + "pc:" + tag(ns, ch) }

// Signed-in user: set of node ids holding a connection of the user.
func (k keys) user(ns, user string) string { return k.prefix + "u:" + tag(ns, user) }

func (k keys) cache(ns, ch string) string  { return k.prefix + "c:" + tag(ns, ch) }
func (k keys) claim(ns, key string) string { return k.prefix + "cl:" + tag(ns, key) }

// Cluster membership: zset node -> last heartbeat (Redis TIME, ms), and the
// set of every id that may still own state (a record may be gone while
// its state is not, if a reaper stopped halfway).
func (k keys) nodes() string             { return k.prefix + "nodes" }
func (k keys) known() string             { return k.prefix + "known" }
func (k keys) reapLock(id string) string { return k.prefix + "reap:" + id }

// index kinds: what a node contributed, so a reaper can undo exactly that.
const (
	idxOccupancy = "o"
	idxPresence  = "p"
	idxUsers     = "u"
	idxClaims    = "c"
)

var indexKinds = []string{idxOccupancy, idxPresence, idxUsers, idxClaims}

func (k keys) index(node, kind string) string { return k.prefix + "n:" + node + ":" + kind }

// Pub/sub channels: one per (namespace, channel) and one control channel.
func (k keys) data(ns, ch string) string {
	return k.prefix + "m:" + strconv.Itoa(len(ns)) + ":" + ns + ":" + ch
}
func (k keys) control() string { return k.prefix + "ctl" }

// indexMember joins parts into one set member: every part but the last is
// length-prefixed, so any bytes may appear in any part.
func indexMember(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i < len(parts)-1 {
			b.WriteString(strconv.Itoa(len(p)))
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}

var errBadMember = errors.New("redisengine: malformed index member")

// splitMember undoes indexMember for n parts.
func splitMember(s string, n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n - 1 {
		colon := strings.IndexByte(s, ':')
		if colon < 1 {
			return nil, errBadMember
		}
		digits := s[:colon]
		if (len(digits) > 1 && digits[0] == '0') || strings.Trim(digits, "0123456789") != "" {
			return nil, errBadMember // only the form indexMember writes
		}
		l, err := strconv.Atoi(digits)
		if err != nil || l > len(s)-colon-1 {
			return nil, errBadMember
		}
		out = append(out, s[colon+1:colon+1+l])
		s = s[colon+1+l:]
	}
	return append(out, s), nil
}
