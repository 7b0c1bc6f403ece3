package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeptTail: a re-render keeps the hand-written part of the document
// (from the marker on) and nothing when there is no marker or no file.
func TestKeptTail(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "benchmarks.md")
	if got := keptTail(doc); got != nil {
		t.Fatalf("no file: %q", got)
	}
	tail := keptMarker + "\n\n## Talo\n\nfigures\n"
	if err := os.WriteFile(doc, []byte("# generated\n\n| a | b |\n"+tail), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(keptTail(doc)); got != tail {
		t.Fatalf("kept %q, want %q", got, tail)
	}
	if err := os.WriteFile(doc, []byte("# generated only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := keptTail(doc); got != nil {
		t.Fatalf("no marker: %q", got)
	}
}
