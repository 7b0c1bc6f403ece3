package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/loadgen"
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

// compare renders the document and its charts from result files, links
// the charts relative to the document and keeps the hand-written part.
func TestCompareWritesDocumentAndCharts(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results")
	for _, srv := range []string{"switchboard", "soketi"} {
		steps := []loadgen.Step{{Name: "10/s", Rate: 10, Sent: 10, Latency: loadgen.Latency{P99Ms: 3}, Pass: true},
			{Name: "20/s", Rate: 20, Sent: 20, Latency: loadgen.Latency{P99Ms: 300}}}
		r := &loadgen.Report{SchemaVersion: 1, Protocol: "pusher", Scenario: "fanout", Label: srv, Steps: steps, Best: &steps[0],
			Command: "bench/run.sh --server " + srv + " --scenario fanout-2k-1ch"}
		if err := os.MkdirAll(filepath.Join(results, srv), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(results, srv, "fanout-2k-1ch.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	docs := filepath.Join(dir, "docs")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(docs, "benchmarks.md")
	tail := keptMarker + "\n\n## Hand-written\n\n`go test -bench X ./pkg/`\n"
	if err := os.WriteFile(out, []byte("old\n"+tail), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runCompare([]string{"--results", results, "--out", out, "--quick"}); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(docs, "bench", "fanout-2k-1ch-p99.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"](bench/fanout-2k-1ch-p99.svg)", "**Quick suite**",
		"Reproduce: `bench/run.sh --server switchboard --scenario fanout-2k-1ch`"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if !strings.HasSuffix(string(doc), "\n"+tail) || strings.Contains(string(doc), "old\n") {
		t.Errorf("hand-written part not kept as is:\n%s", doc)
	}
	if !strings.Contains(string(svg), `data-series="soketi"`) || !strings.Contains(string(svg), `data-series="switchboard"`) {
		t.Error("chart lacks a server")
	}
}
