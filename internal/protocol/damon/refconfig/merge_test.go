package refconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	auth := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(cfg, []byte(`{"ping": 3e4, "socket": {"host": "0.0.0.0", "port": 42069}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(auth, []byte(`{"token": "s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Unset keys are filled; nothing named: nothing read.
	got, problems := Merge(Settings{}, cfg, auth)
	want := Settings{Listen: "0.0.0.0:42069", PingInterval: 30 * time.Second, MaxDocumentBytes: DefaultMaxBytesMessage, Token: "s3cret"}
	if got != want || problems != nil {
		t.Fatalf("%+v %v", got, problems)
	}
	if got, problems := Merge(Settings{Token: "x"}, "", ""); got != (Settings{Token: "x"}) || problems != nil {
		t.Fatalf("%+v %v", got, problems)
	}
	// Equal values agree; different ones are each reported by key, the
	// token without its value.
	if _, problems := Merge(want, cfg, auth); problems != nil {
		t.Fatal(problems)
	}
	_, problems = Merge(Settings{Listen: ":1", PingInterval: time.Second, MaxDocumentBytes: 1, Token: "other"}, cfg, auth)
	all := strings.Join(problems, "\n")
	if len(problems) != 4 || strings.Contains(all, "s3cret") || strings.Contains(all, "other") {
		t.Fatalf("problems:\n%s", all)
	}
	for _, key := range []string{"damon.listen", "damon.ping_interval", "damon.max_document_bytes", "damon.token"} {
		if !strings.Contains(all, key) {
			t.Errorf("no problem names %s", key)
		}
	}
	// Unreadable files are problems named by their setting.
	_, problems = Merge(Settings{}, filepath.Join(dir, "missing.json"), filepath.Join(dir, "missing-auth.json"))
	if len(problems) != 2 || !strings.HasPrefix(problems[0], "damon.reference_config: ") || !strings.HasPrefix(problems[1], "damon.reference_auth: ") {
		t.Fatalf("%q", problems)
	}
}
