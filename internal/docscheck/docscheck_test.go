package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath finds a path into the repository's top-level source folders:
// at the start of a line or after a space, quote, backtick or bracket,
// optionally behind "./", so URLs and HTTP routes (/rooms/{id}) do not
// match.
var repoPath = regexp.MustCompile("(?:^|[\\s`'\"(\\[])(?:\\./)?((?:\\.ci|internal|cmd|docs|tests|scripts|bench|proto)/[^\\s`'\"()\\[\\]<>,;]*)")

func TestDocsNameExistingPaths(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"))
	checked := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, line := range strings.Split(string(text), "\n") {
			for _, m := range repoPath.FindAllStringSubmatch(line, -1) {
				p := cleanPath(m[1])
				checked++
				if testing.Verbose() {
					t.Logf("%s:%d %s", rel, i+1, p)
				}
				// A Markdown link or image is relative to its document.
				if !exists(root, p) && !exists(filepath.Dir(doc), p) {
					t.Errorf("%s:%d names %s, which is not in the repository", rel, i+1, p)
				}
			}
		}
	}
	t.Logf("%d repository paths named in %d docs", checked, len(docs))
	if checked == 0 {
		t.Fatal("found no repository paths in the docs: the pattern is broken")
	}
}

// cleanPath drops what follows a path in prose: Go's "/..." package
// pattern, a #fragment, trailing punctuation.
func cleanPath(p string) string {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimSuffix(p, "...")
	return strings.TrimRight(p, ".:/")
}

// exists accepts a file, a folder, or a glob (tests/*/run.sh) that matches.
func exists(root, p string) bool {
	full := filepath.Join(root, filepath.FromSlash(p))
	if strings.ContainsAny(p, "*?[") {
		matches, err := filepath.Glob(full)
		return err == nil && len(matches) > 0
	}
	_, err := os.Stat(full)
	return err == nil
}

// The pattern itself: what it must and must not take for a path.
func TestRepoPathPattern(t *testing.T) {
	cases := map[string]string{
		"see `internal/hub/hub.go`.":         "internal/hub/hub.go",
		"run ./cmd/switchboard now":          "cmd/switchboard",
		"(docs/benchmarks.md#results)":       "docs/benchmarks.md",
		"go test ./internal/...":             "internal",
		"tests/*/run.sh, then":               "tests/*/run.sh",
		"GET /rooms/{id} and /apps/1/events": "",
		"https://github.com/x/internal/y":    "",
		"internal/protocol/dcl:":             "internal/protocol/dcl",
	}
	for line, want := range cases {
		got := ""
		if m := repoPath.FindStringSubmatch(line); m != nil {
			got = cleanPath(m[1])
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}

// makeCommand finds `make TARGET` in backticks or on an indented command line.
var makeCommand = regexp.MustCompile("(?:`|^    )make ([a-z][a-z0-9-]*)")

// Every `make TARGET` the docs show is a target of the Makefile.
func TestDocsNameExistingMakeTargets(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, line := range strings.Split(string(text), "\n") {
			for _, m := range makeCommand.FindAllStringSubmatch(line, -1) {
				if !targets[m[1]] {
					t.Errorf("%s:%d shows `make %s`, which is not a Makefile target", rel, i+1, m[1])
				}
			}
		}
	}
}
