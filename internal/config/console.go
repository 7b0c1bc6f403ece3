package config

import (
	"crypto/subtle"
	"fmt"
	"strings"
)

// DefaultConsolePath is where the live console is served when enabled.
const DefaultConsolePath = "/console"

// MinConsoleTokenBytes is the shortest console token accepted: the token
// is the only thing between a browser and every event on the node.
const MinConsoleTokenBytes = 16

// Console configures the operator's live console (internal/console): a page
// on the main listener showing connections, channels, presence and a live
// event stream, with a form to publish test events. See docs/console.md.
type Console struct {
	// Enabled serves the console (default false: it shows every event).
	Enabled bool `yaml:"enabled"`
	// Path is where the page lives; its API and feed are below it.
	Path string `yaml:"path"`
	// Token is required when enabled: a browser sends it as
	// "Authorization: Bearer" or through the login form. It must not be
	// an app secret or the Damon token.
	Token string `yaml:"token"`
	// AllowRemote serves the console to non-loopback clients (default
	// false: 403). Behind a reverse proxy the client address comes from
	// limits.trusted_proxies and limits.client_ip_header.
	AllowRemote bool `yaml:"allow_remote"`
}

func (c *Console) applyDefaults() {
	if c.Path == "" {
		c.Path = DefaultConsolePath
	}
}

// validate checks the section; secrets are the app secrets and other
// shared secrets the token must differ from. The token is never printed.
func (c *Console) validate(secrets []namedSecret) []string {
	var errs []string
	p := c.Path
	switch {
	case !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/"):
		errs = append(errs, fmt.Sprintf("console.path %q: must start with /, name a path and not end with /", p))
	case strings.ContainsAny(p, "{} \t\r\n?#%"):
		errs = append(errs, fmt.Sprintf("console.path %q: wildcards, spaces, %%, ? and # are not allowed", p))
	case p == "/metrics" || p == "/healthz" || p == "/readyz":
		errs = append(errs, fmt.Sprintf("console.path %q: reserved by the server", p))
	}
	if !c.Enabled {
		return errs
	}
	if len(c.Token) < MinConsoleTokenBytes {
		errs = append(errs, fmt.Sprintf("console.token: required when console.enabled, at least %d characters", MinConsoleTokenBytes))
	}
	for _, s := range secrets {
		if s.value != "" && subtle.ConstantTimeCompare([]byte(s.value), []byte(c.Token)) == 1 {
			errs = append(errs, "console.token: must not be the same as "+s.name+" (give the console its own secret)")
		}
	}
	return errs
}

// namedSecret is a configured secret and the key that holds it.
type namedSecret struct{ name, value string }

// sharedSecrets lists every other secret in the configuration, for the
// console token's check.
func (c *Config) sharedSecrets() []namedSecret {
	out := make([]namedSecret, 0, len(c.Pusher.Apps)+3)
	for i, a := range c.Pusher.Apps {
		out = append(out, namedSecret{fmt.Sprintf("pusher.apps[%d].secret", i), a.Secret})
	}
	out = append(out,
		namedSecret{"damon.token", c.Damon.Token},
		namedSecret{"dcl.access_token_secret", c.DCL.AccessTokenSecret})
	return out
}
