package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// effective renders a configuration as YAML: what the server will use,
// with nil and empty lists alike (both mean "none").
func effective(t *testing.T, c *Config) string {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustParse(t *testing.T, data []byte) *Config {
	t.Helper()
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("%v\nin:\n%s", err, data)
	}
	return c
}

// The commented default.yaml that default-config prints says exactly what
// an empty file gets.
func TestDefaultYAMLIsBuiltIn(t *testing.T) {
	fromFile := effective(t, mustParse(t, defaultYAML))
	builtIn := effective(t, mustParse(t, nil))
	if fromFile != builtIn {
		t.Fatalf("default.yaml and the built-in defaults differ:\n%s", lineDiff(fromFile, builtIn))
	}
}

// Every key default.yaml shows may be left out: the file without it means
// the same as no file at all. Inside a list entry (the default app), id,
// key and secret identify the entry and are required instead.
func TestEveryOmittedKeyMeansItsDefault(t *testing.T) {
	want := effective(t, Default())
	var root yaml.Node
	if err := yaml.Unmarshal(defaultYAML, &root); err != nil {
		t.Fatal(err)
	}
	required := map[string]bool{"pusher.apps[0].id": true, "pusher.apps[0].key": true, "pusher.apps[0].secret": true}
	keys := 0
	walkKeys(root.Content[0], "", func(path string, parent *yaml.Node, i int) {
		keys++
		// Take the key and its value out, render, put them back.
		saved := append([]*yaml.Node(nil), parent.Content...)
		parent.Content = append(parent.Content[:i:i], parent.Content[i+2:]...)
		data, err := yaml.Marshal(&root)
		parent.Content = saved
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(data)
		if required[path] {
			if err == nil || !strings.Contains(err.Error(), "id, key and secret are required") {
				t.Errorf("without %s: error %v, want one saying it is required", path, err)
			}
			return
		}
		if err != nil {
			t.Errorf("without %s: %v", path, err)
			return
		}
		if got := effective(t, c); got != want {
			t.Errorf("without %s the configuration differs from the default:\n%s", path, lineDiff(got, want))
		}
	})
	if keys < 80 {
		t.Fatalf("walked only %d keys; is default.yaml read?", keys)
	}
}

// walkKeys calls fn for every mapping key under n, depth first, with its
// dotted path, its mapping and its index in the mapping's Content.
func walkKeys(n *yaml.Node, path string, fn func(path string, parent *yaml.Node, i int)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			walkKeys(n.Content[i+1], p, fn)
			fn(p, n, i)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkKeys(c, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d: got %q, want %q", i+1, a, b))
		}
	}
	return strings.Join(out, "\n")
}

// The transport's own defaults (for code that builds Options by hand) are
// the configuration's.
func TestTransportDefaultsAgree(t *testing.T) {
	c := Default()
	if c.Limits.MaxMessageBytes != transport.DefaultMaxMessageBytes ||
		c.Limits.SendQueueBytes != transport.DefaultSendQueueBytes ||
		c.Limits.WriteTimeout.D() != transport.DefaultWriteTimeout {
		t.Fatalf("limits %+v", c.Limits)
	}
}

// The report: a file holding only a log level kept no Pusher app,
// so every client got 4001. A missing app list is the default app.
func TestFileWithoutAppsKeepsDefaultApp(t *testing.T) {
	c := mustParse(t, []byte("log: {level: debug}\n"))
	if c.Log.Level != "debug" {
		t.Fatalf("level %q", c.Log.Level)
	}
	if len(c.Pusher.Apps) != 1 || c.Pusher.Apps[0].Key != "app-key" || c.Pusher.Apps[0].ID != "app-id" {
		t.Fatalf("apps %+v", c.Pusher.Apps)
	}
	if !c.UsesDefaultSecret() {
		t.Fatal("the default secret must still be reported (and warned about)")
	}
	// A null list is a missing one.
	if c := mustParse(t, []byte("pusher:\n  apps:\n")); len(c.Pusher.Apps) != 1 || c.Pusher.Apps[0].Key != "app-key" {
		t.Fatalf("apps: null gave %+v", c.Pusher.Apps)
	}
}

func TestEmptyAppListExplainsHowToDisable(t *testing.T) {
	_, err := Parse([]byte("pusher: {apps: []}\n"))
	if err == nil || !strings.Contains(err.Error(), "pusher.apps is an empty list") || !strings.Contains(err.Error(), "pusher.enabled: false") {
		t.Fatalf("error %v", err)
	}
	// As the server and check-config read it.
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("log: {level: debug}\npusher:\n  apps: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "pusher.enabled: false") {
		t.Fatalf("Load: %v", err)
	}
	c := mustParse(t, []byte("pusher: {enabled: false, apps: []}\n"))
	if c.UsesDefaultSecret() {
		t.Fatal("Pusher is off: no default-secret warning")
	}
	if c := mustParse(t, []byte("pusher: {enabled: false}\n")); c.UsesDefaultSecret() {
		t.Fatal("Pusher is off: no default-secret warning")
	}
}

// Without pusher.apps, the app variables change the default app.
func TestEnvOverridesDefaultApp(t *testing.T) {
	env := map[string]string{"SWITCHBOARD_APP_SECRET": "s3cret"}
	c := &Config{}
	if err := applyEnv(c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if a := c.Pusher.Apps[0]; len(c.Pusher.Apps) != 1 || a.ID != "app-id" || a.Key != "app-key" || a.Secret != "s3cret" {
		t.Fatalf("apps %+v", c.Pusher.Apps)
	}
	if c.UsesDefaultSecret() {
		t.Fatal("secret was replaced")
	}
}

func TestNegativeAppLimitIsAnError(t *testing.T) {
	_, err := Parse([]byte("pusher: {apps: [{id: a, key: k, secret: s, limits: {max_batch_size: -1}}]}\n"))
	if err == nil || !strings.Contains(err.Error(), "pusher.apps[0].limits") {
		t.Fatalf("error %v", err)
	}
}

func TestStrictChannelNamesDefault(t *testing.T) {
	c := mustParse(t, []byte("pusher: {strict_channel_names: true}\n"))
	if n := c.Pusher.Apps[0].Limits.MaxChannelNameLength; n != StrictMaxChannelNameLength {
		t.Fatalf("max_channel_name_length %d", n)
	}
}
