package pusher

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ChannelKind is what a channel's name prefix makes it.
type ChannelKind uint8

const (
	Public ChannelKind = iota
	Private
	PrivateEncrypted
	Presence
)

// ServerToUserPrefix names the per-user channel reached by sendToUser.
const ServerToUserPrefix = "#server-to-user-"

// Channel describes a channel name.
type Channel struct {
	Kind  ChannelKind
	Cache bool // last event replayed on subscribe
}

// ClassifyChannel derives a channel's kind from its prefix.
func ClassifyChannel(name string) Channel {
	switch {
	case strings.HasPrefix(name, "private-encrypted-cache-"):
		return Channel{PrivateEncrypted, true}
	case strings.HasPrefix(name, "private-encrypted-"):
		return Channel{PrivateEncrypted, false}
	case strings.HasPrefix(name, "private-cache-"):
		return Channel{Private, true}
	case strings.HasPrefix(name, "private-"):
		return Channel{Private, false}
	case strings.HasPrefix(name, "presence-cache-"):
		return Channel{Presence, true}
	case strings.HasPrefix(name, "presence-"):
		return Channel{Presence, false}
	case strings.HasPrefix(name, "cache-"):
		return Channel{Public, true}
	}
	return Channel{Public, false}
}

// NeedsAuth reports whether subscribing takes a signature.
func (c Channel) NeedsAuth() bool { return c.Kind != Public }

// ValidateChannelName applies the name rules: 1..max characters from
// A-Z a-z 0-9 _ - = @ , . ; and no leading '#' unless allowHash (the
// server-to-user channel, which only the HTTP API and the signed-in user
// may name).
func ValidateChannelName(name string, max int, allowHash bool) error {
	if name == "" {
		return fmt.Errorf("channel name is empty")
	}
	if len(name) > max {
		return fmt.Errorf("channel name %q is %d characters, over the limit of %d", truncate(name, 40), len(name), max)
	}
	s := name
	if s[0] == '#' {
		if !allowHash {
			return fmt.Errorf("channel name %q: names starting with # are reserved", truncate(name, 40))
		}
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if !channelNameByte(s[i]) {
			return fmt.Errorf("channel name %q has an invalid character %q (allowed: A-Z a-z 0-9 _ - = @ , . ;)", truncate(name, 40), s[i])
		}
	}
	return nil
}

func channelNameByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '_', '-', '=', '@', ',', '.', ';':
		return true
	}
	return false
}

// truncate shortens s for a message, never splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
