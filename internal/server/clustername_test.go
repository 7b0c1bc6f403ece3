package server

import "testing"

// cluster.name reaches the Redis engine as its key prefix; the default
// keeps the prefix clusters already use.
func TestRedisPrefixOfClusterName(t *testing.T) {
	for name, want := range map[string]string{"": "sb:", "staging": "sb-staging:", "o": "sb-o:"} {
		if got := redisPrefix(name); got != want {
			t.Errorf("redisPrefix(%q) = %q, want %q", name, got, want)
		}
	}
}
