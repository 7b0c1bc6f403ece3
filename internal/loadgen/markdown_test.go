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

// Every generated figure names its command; the Damon and ws-room runs get
// their own section (no soketi column) with the bare-write floor of the
// same suite; ramps get their chart.
func TestComparisonCommandsProtocolsAndPlots(t *testing.T) {
	dir := t.TempDir()
	step := func(rate, dps, p99, us float64, pass bool) Step {
		return Step{Name: "x", Rate: rate, Sent: 10, DeliveriesPerSec: dps, Latency: Latency{P50Ms: p99 / 4, P99Ms: p99}, ServerCPUUsPerDelivery: us, Pass: pass}
	}
	fan := func(cmd string) *Report {
		s := []Step{step(10, 20000, 5, 6, true), step(20, 40000, 500, 5, false)}
		return &Report{Protocol: "pusher", Scenario: "fanout", Steps: s, Best: &s[0], Command: cmd, Params: map[string]any{"max_p99_ms": 100.0, "conns": 2000.0, "channels": 1.0}}
	}
	writeReport(t, dir, "switchboard", "fanout-2k-1ch", fan("bench/run.sh --server switchboard --scenario fanout-2k-1ch"))
	writeReport(t, dir, "soketi", "fanout-2k-1ch", fan("")) // an older result without its command
	ds := []Step{step(50, 110000, 12, 4.5, true), step(100, 150000, 300, 4, false)}
	writeReport(t, dir, "switchboard", "damon-global-2k", &Report{Protocol: "damon", Scenario: "damon", Steps: ds, Best: &ds[0],
		Idle: &IdleResult{Held: 2004, ServerRSSAfterBytes: 1 << 26, ServerRSSPerConnBytes: 3100}, Conns: ConnStats{Held: 2004},
		Command: "bench/run.sh --server switchboard --scenario damon-global-2k", Params: map[string]any{"max_p99_ms": 100.0}})
	writeReport(t, dir, "switchboard", "write-floor", GoBenchReport([]GoBenchResult{
		{Name: "BenchmarkLoopbackWriteFloor/100subs", Metrics: map[string]float64{"cpu-ns/delivery": 2500}},
		{Name: "BenchmarkLoopbackWriteFloor/1000subs", Metrics: map[string]float64{"cpu-ns/delivery": 9000}},
		{Name: "BenchmarkLoopbackWriteFloor/1000subs-remote", Metrics: map[string]float64{"cpu-ns/delivery": 5300}},
		{Name: "BenchmarkLoopbackWriteFloor/1000subs-remote-paced", Metrics: map[string]float64{"cpu-ns/delivery": 6000}},
		{Name: "BenchmarkLoopbackWriteFloor/2000subs-remote-every-1s", Metrics: map[string]float64{"cpu-ns/delivery": 5000}},
		{Name: "BenchmarkLoopbackWriteFloor/2000subs-remote-every-100ms", Metrics: map[string]float64{"cpu-ns/delivery": 4000}},
	}, Env{Command: "go test -run '^$' -bench LoopbackWriteFloor ./internal/transport/"}, nil))

	c, err := LoadComparison(dir, "switchboard", "soketi", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) != 1 || c.Proto["damon-global-2k"] == nil || c.GoBench[FloorRun] == nil {
		t.Fatalf("runs %v proto %v gobench %v", c.Runs, c.Proto, c.GoBench)
	}
	plots := c.Plots()
	if len(plots["fanout-2k-1ch"].Series) != 2 || len(plots[ProtoPlotName].Series) != 1 || plots["fanout-2k-1ch"].HLine != 100 {
		t.Fatalf("plots %+v", plots)
	}
	c.PlotLinks = map[string]string{"fanout-2k-1ch": "bench/fanout-2k-1ch-p99.svg", ProtoPlotName: "bench/protocols-p99.svg"}
	var b strings.Builder
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		"Reproduce: `bench/run.sh --server switchboard --scenario fanout-2k-1ch` · `bench/run.sh --server soketi --scenario fanout-2k-1ch`",
		"](bench/fanout-2k-1ch-p99.svg)",
		"## Damon and Decentraland fan-out (switchboard only)",
		"CPU per delivery: 2.50 µs to 100 sockets in turn, 9.00 µs to 1000 sockets in turn. ",
		"Reproduce: `go test -run '^$' -bench LoopbackWriteFloor ./internal/transport/`",
		"in another process on the generator's CPU (the process's CPU is then the writes' alone, with the loopback receive work the kernel does within them): 5.30 µs to 1000 sockets in turn, 6.00 µs to 1000 sockets in turn once per 100 ms, every reader idle.",
		"](bench/protocols-p99.svg)",
		// The ramp has no 1/s step, so only the 10/s floor is beside it.
		"| offered/s | floor's pace | floor µs/delivery | switchboard µs/delivery | × floor | soketi µs/delivery | × floor |\n|---:|---|---:|---:|---:|---:|---:|\n" +
			"| 10 | one round per 100 ms | 4.00 | 6.00 | 1.50× | 6.00 | 1.50× |\n\n",
		"| damon-global-2k | 2004 | 3100 | 110000 | 50 | 3.00 | 12.00 | 4.50 | 0.50× |",
		"Reproduce: `bench/run.sh --server switchboard --scenario damon-global-2k`",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if strings.Contains(doc, "\n## damon-global-2k") || strings.Contains(doc, "## write-floor") {
		t.Error("a Switchboard-only run is in the side-by-side part")
	}
	if t.Failed() {
		t.Log(doc)
	}
}
