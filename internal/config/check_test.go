package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Every class of configuration error names its line and column, says what
// is wrong and how to fix it; all problems are listed, not just the first.
func TestCheckMessages(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"typo in a key", "listen: \":1\"\nclutser:\n  engine: nats\n",
			"config: line 2, column 1: unknown key `clutser` in the top level: did you mean `cluster`?"},
		{"typo in a nested key", "cluster:\n  nats:\n    replics: 3\n",
			"config: line 3, column 5: unknown key `replics` in `cluster.nats`: did you mean `replicas`?"},
		{"unknown key far from any", "colour: blue\n",
			"config: line 1, column 1: unknown key `colour` in the top level: the keys here are cluster, console, damon, dcl, debug, limits, listen, log, memory, pusher, shutdown, talo, tls, websocket"},
		{"unknown key in a list entry", "pusher:\n  apps:\n    - id: a\n      key: b\n      secret: c\n      colour: blue\n",
			"config: line 6, column 7: unknown key `colour` in `pusher.apps[0]`: the keys here are allowed_origins, auth_timeout, cache_ttl, client_events, enabled, id, key, limits, secret, subscription_count, subscription_error_events, user_authentication, watchlist, webhook_batching, webhooks"},
		{"wrong type: duration", "shutdown:\n  timeout: ten\n",
			"config: line 2, column 12: `shutdown.timeout`: expected a duration like 10s, 1m30s or 250ms, got \"ten\""},
		{"wrong type: number", "limits:\n  max_message_bytes: lots\n",
			"config: line 2, column 22: `limits.max_message_bytes`: expected a whole number such as 100, got \"lots\""},
		{"wrong type: bool", "pusher: {enabled: maybe}\n",
			"config: line 1, column 19: `pusher.enabled`: expected true or false, got \"maybe\""},
		{"wrong type: section", "log: [a]\n",
			"config: line 1, column 6: `log`: expected a section of settings (key: value lines indented below it), got a list"},
		{"wrong type: list", "dcl:\n  path_prefixes: /rooms\n",
			"config: line 2, column 18: `dcl.path_prefixes`: expected a list, such as [a, b] or lines starting with \"- \", got \"/rooms\""},
		{"wrong type: scalar given a section", "listen: {port: 1}\n",
			"config: line 1, column 9: `listen`: expected a text value (quote it if it starts with a special character), got a section of key: value settings"},
		{"duplicate key", "listen: a\nlisten: b\n",
			"config: line 2, column 1: duplicate key `listen` in the top level (first at line 1): remove one"},
		{"missing required key", "pusher:\n  apps:\n    - id: a\n      key: b\n",
			"config: line 3, column 7: pusher.apps[0]: missing required key `secret` (id, key and secret are required)"},
		{"out of range", "cluster:\n  nats:\n    replicas: 7\n",
			"config: line 3, column 15: cluster.nats.replicas 7: out of range: allowed 0 (automatic) to 5"},
		{"a cluster name a NATS subject cannot hold", "cluster:\n  name: prod.eu\n",
			"config: line 2, column 9: cluster.name \"prod.eu\": letters, digits, _ and -, up to 32"},
		{"out of range, from the Damon limits", "damon:\n  max_document_bytes: -1\n",
			"config: line 2, column 23: damon.max_document_bytes -1: must be from 1 to 16777216"},
		{"tab indentation", "damon:\n\tlisten: x\n",
			"config: line 2: YAML syntax: found character that cannot start any token: indent with spaces, YAML does not allow tabs"},
		{"bad indentation", "pusher:\n  apps:\n    - id: a\n    key: b\n",
			"config: line 2: YAML syntax: did not find expected '-' indicator: check the indentation and quoting from this line to the next few (quote values holding \": \" or starting with a special character)"},
		{"not a mapping", "- listen: a\n",
			"config: line 1, column 1: the file must hold key: value settings (listen: \":6001\", log: ...), got a list"},
		{"alias that contains itself", "log: &x {<<: *x}\n",
			"config: line 1, column 14: alias *x refers to itself: a setting cannot contain itself"},
		{"second document", "---\nlisten: a\n---\nlisten: b\n",
			"config: line 3, column 1: a second YAML document (after ---) would be ignored: keep all settings in one document"},
		{"several problems, all listed", "log: {level: loud}\ntls: {cert: a}\n",
			"config: line 1, column 14: log.level \"loud\": want debug, info, warn or error\n" +
				"config: line 2, column 6: tls: set both cert and key, or neither"},
		{"several structural problems", "lisen: a\nshutdown: {timeout: soon}\n",
			"config: line 1, column 1: unknown key `lisen` in the top level: did you mean `listen`?\n" +
				"config: line 2, column 21: `shutdown.timeout`: expected a duration like 10s, 1m30s or 250ms, got \"soon\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// Anchors, aliases and merge keys decode as YAML defines them, and a key
// merged in and set again is not a duplicate error (the local one wins).
func TestCheckAcceptsAnchorsAndMerges(t *testing.T) {
	c, err := Parse([]byte("log: &l {level: debug}\ntls:\ndebug: {pprof_listen: \"\"}\npusher:\n  apps:\n    - &app {id: a, key: k, secret: s}\n    - {<<: *app, id: b, key: k2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || len(c.Pusher.Apps) != 2 || c.Pusher.Apps[1].Secret != "s" {
		t.Fatalf("%+v %+v", c.Log, c.Pusher.Apps)
	}
}

// Load names the file; an error caused by the environment, not the file,
// has no line.
func TestLoadPlacesProblemsInTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(p, []byte("listen: \":1\"\nlog:\n  format: xml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, func(k string) string { return map[string]string{"SWITCHBOARD_LOG_LEVEL": "chatty"}[k] })
	want := p + `: log.level "chatty": want debug, info, warn or error` + "\n" +
		p + `: line 3, column 11: log.format "xml": want text or json`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"clutser", "cluster", 1}, {"", "abc", 3}, {"listen", "listen", 0}, {"lisen", "listen", 1}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

// The structural check must be at least as strict as the decoder it
// stands in front of: whatever it accepts, the strict decoder decodes, and
// nothing panics or loops on any input (aliases included).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"", "listen: a", "clutser: {}", "listen: a\nlisten: b", "shutdown: {timeout: ten}",
		"pusher: {apps: [{id: a, key: b, secret: c, limits: {max_connections: x}}]}",
		"a: &x [*x]", "log: {<<: [*a]}", "x: &a {}\nlog: {<<: *a}", "pusher: {apps: [{<<: 1}]}",
		"---\n---", "\t", "? [a]\n: b", "listen: !!binary aGk=", "limits: {max_http_body_bytes: 1e3}",
		"damon: {ping_interval: 5}", "pusher: {apps: [{webhooks: [{headers: {a: [b]}}]}]}",
		"cluster: {nats: {replicas: 0x10}}", string(defaultYAML),
		"pusher: {apps: &x [*x]}", "log: &x {<<: *x}",
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\ndcl: {path_prefixes: [*c,*c,*c,*c,*c,*c,*c,*c,*c]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, problems := check(data); len(problems) == 0 {
			if _, err := decode(data); err != nil {
				t.Fatalf("check accepted what decode refuses: %v", err)
			}
		}
		// Not Parse: applying defaults reads the files the input names
		// (damon.reference_config), which a fuzzer must not do.
	})
}
