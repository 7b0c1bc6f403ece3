package config

import (
	"strings"
	"testing"
)

func TestConsoleDefaults(t *testing.T) {
	c := mustParse(t, nil)
	if c.Console.Enabled || c.Console.Path != DefaultConsolePath || c.Console.Token != "" || c.Console.AllowRemote {
		t.Fatalf("defaults %+v", c.Console)
	}
	c = mustParse(t, []byte("console: {enabled: true, path: /ops/live, token: 0123456789abcdef, allow_remote: true}\n"))
	if !c.Console.Enabled || c.Console.Path != "/ops/live" || !c.Console.AllowRemote {
		t.Fatalf("set %+v", c.Console)
	}
}

// Every bad console setting is refused with the key named, and the token
// never appears in the error.
func TestConsoleValidationNamesTheKey(t *testing.T) {
	const apps = "pusher: {apps: [{id: a, key: k, secret: the-apps-secret-0123}]}\n"
	for yaml, want := range map[string]string{
		"console: {enabled: true}":                                     "console.token: required",
		"console: {enabled: true, token: short}":                       "console.token: required",
		"console: {path: console}":                                     "console.path",
		"console: {path: /console/}":                                   "console.path",
		"console: {path: /}":                                           "console.path",
		"console: {path: \"/con{x}\"}":                                 "console.path",
		"console: {path: /metrics}":                                    "console.path",
		"console: {enabled: true, tokn: 0123456789abcdef}":             "tokn", // unknown key
		apps + "console: {enabled: true, token: the-apps-secret-0123}": "must not be the same as pusher.apps[0].secret",
		"damon: {token: damon-shared-token}\nconsole: {enabled: true, token: damon-shared-token}": "must not be the same as damon.token",
	} {
		_, err := Parse([]byte(yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one with %q", yaml, err, want)
			continue
		}
		for _, secret := range []string{"the-apps-secret-0123", "damon-shared-token", "0123456789abcdef"} {
			if strings.Contains(err.Error(), secret) && !strings.Contains(yaml, "tokn") {
				t.Errorf("%s: the error shows the secret: %v", yaml, err)
			}
		}
	}
	// Off, the token is not required; a token is checked only when on.
	for _, yaml := range []string{
		"console: {enabled: false}",
		"console: {enabled: false, token: app-secret}",
		"console: {enabled: true, token: 0123456789abcdef}",
	} {
		if _, err := Parse([]byte(yaml + "\n")); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}

// The default app's published secret is an app secret like any other.
func TestConsoleTokenIsNotTheDefaultSecret(t *testing.T) {
	_, err := Parse([]byte("console: {enabled: true, token: app-secret-app-secret}\npusher: {apps: [{id: a, key: k, secret: app-secret-app-secret}]}\n"))
	if err == nil || !strings.Contains(err.Error(), "pusher.apps[0].secret") {
		t.Fatalf("error %v", err)
	}
}

// SWITCHBOARD_CONSOLE_TOKEN sets the token, and is checked like one from
// the file.
func TestConsoleTokenFromEnv(t *testing.T) {
	env := map[string]string{"SWITCHBOARD_CONSOLE_TOKEN": "from-the-environment-0123"}
	c := &Config{Console: Console{Enabled: true}}
	if err := applyEnv(c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil || c.Console.Token != "from-the-environment-0123" {
		t.Fatalf("token %q, %v", c.Console.Token, err)
	}
	env["SWITCHBOARD_CONSOLE_TOKEN"] = DefaultSecret + "-is-not-it"
	env["SWITCHBOARD_APP_SECRET"] = DefaultSecret + "-is-not-it"
	c = &Config{Console: Console{Enabled: true}}
	_ = applyEnv(c, func(k string) string { return env[k] })
	c.applyDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pusher.apps[0].secret") {
		t.Fatalf("a token equal to the app secret from the environment: %v", err)
	}
}
