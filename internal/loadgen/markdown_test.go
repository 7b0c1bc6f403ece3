package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeReport(t *testing.T, dir, server, name string, r *Report) {
	t.Helper()
	p := filepath.Join(dir, server, name+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(f); err != nil {
		_ = f.Close() // the write error is the one to report
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestComparisonDocument(t *testing.T) {
	dir := t.TempDir()
	ramp := func(best float64, p99 float64) *Report {
		steps := []Step{
			{Name: "10/s", Rate: 10, Sent: 100, DeliveriesPerSec: 20000, Latency: Latency{P50Ms: 1, P99Ms: p99 / 2}, ServerCPUUsPerDelivery: 2, Pass: true},
			{Name: "20/s", Rate: 20, Sent: 200, DeliveriesPerSec: best, Latency: Latency{P50Ms: 2, P99Ms: p99}, Pass: true},
			{Name: "40/s", Rate: 40, Sent: 400, DeliveriesPerSec: 50000, Latency: Latency{P99Ms: 500}, Pass: false, FailReason: "p99 500ms > 100ms"},
		}
		b := steps[1]
		return &Report{Scenario: "fanout", Steps: steps, Best: &b, Params: map[string]any{"conns": 2000}}
	}
	writeReport(t, dir, "switchboard", "fanout-2k-1ch", ramp(40000, 10))
	writeReport(t, dir, "soketi", "fanout-2k-1ch", ramp(20000, 40))
	writeReport(t, dir, "switchboard", "idle-10k", &Report{Scenario: "idle", Idle: &IdleResult{Held: 10000, ServerRSSPerConnBytes: 5000, ServerRSSAfterBytes: 1 << 27}})
	writeReport(t, dir, "soketi", "idle-10k", &Report{Scenario: "idle", Idle: &IdleResult{Held: 10000, ServerRSSPerConnBytes: 10000, ServerRSSAfterBytes: 1 << 28},
		Notes: []string{"something odd"}})
	writeReport(t, dir, "soketi", "churn", &Report{Scenario: "churn", Churn: &ChurnResult{CompletedPerSec: 99}})

	c, err := LoadComparison(dir, "switchboard", "soketi", []string{"idle-10k"})
	if err != nil {
		t.Fatal(err)
	}
	c.Meta = MachineFacts()
	var b strings.Builder
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		"# Benchmarks: switchboard vs soketi",
		"| highest sustained deliveries/s | 40000 | 20000 | 2.00× (↑ better) |",
		"| server RSS per connection (bytes) | 5000 | 10000 | 0.50× (↓ better) |",
		"At the highest rate both sustained (20 publishes/s offered)",
		"| p99 latency (ms) | 10.00 | 40.00 | 0.25× (↓ better) |",
		"p99 500ms > 100ms",
		"- soketi: something odd",
		"| completed cycles/s | – | 99.0 | – |",
		"| Go | go",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	// The explicit order comes first, then the rest.
	if strings.Index(doc, "## idle-10k") > strings.Index(doc, "## fanout-2k-1ch") {
		t.Error("order not respected")
	}
	if t.Failed() {
		t.Log(doc)
	}
}
