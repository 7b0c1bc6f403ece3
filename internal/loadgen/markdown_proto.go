package loadgen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProtoPlotName is the PlotLinks key of the chart of the Damon and
// ws-room ramps.
const ProtoPlotName = "protocols"

// FloorRun is the run name of the bare loopback write floor
// (BenchmarkLoopbackWriteFloor, measured in the same suite).
const FloorRun = "write-floor"

// floorBenchmarks are the floor's sub-benchmarks, by recipients.
var floorBenchmarks = []struct {
	name string
	subs int
}{{"BenchmarkLoopbackWriteFloor/100subs", 100}, {"BenchmarkLoopbackWriteFloor/1000subs", 1000}}

// remoteFloors are the floor's sub-benchmarks with the readers in another
// process (internal/transport/floor_test.go), which the document quotes.
var remoteFloors = []struct{ name, what string }{
	{"BenchmarkLoopbackWriteFloor/1000subs-remote", "to 1000 sockets in turn"},
	{"BenchmarkLoopbackWriteFloor/1000subs-remote-paced", "to 1000 sockets in turn once per 100 ms, every reader idle"},
}

// pacedFloor reads the floor's sub-benchmarks at a fan-out's own pace,
// "BenchmarkLoopbackWriteFloor/<n>subs-remote-every-<pace>": one write to
// each of n readers (in another process) per pace.
func pacedFloor(name string) (subs int, pace time.Duration, ok bool) {
	rest, ok := strings.CutPrefix(name, "BenchmarkLoopbackWriteFloor/")
	if !ok {
		return 0, 0, false
	}
	n, p, ok := strings.Cut(rest, "subs-remote-every-")
	if !ok {
		return 0, 0, false
	}
	subs, err := strconv.Atoi(n)
	if err != nil {
		return 0, 0, false
	}
	pace, err = time.ParseDuration(p)
	return subs, pace, err == nil && pace > 0
}

// fmtPace is a floor's pace in words: "second", "100 ms".
func fmtPace(d time.Duration) string {
	switch {
	case d == time.Second:
		return "second"
	case d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	default:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	}
}

// writePacedFloor sets the slow steps of a one-channel ramp beside the
// floor measured at the same pace and subscriber count, when the suite ran
// it: the "at every rate from 1 publish/s" comparison, where idle
// readers and cold caches make each write dearer than in a tight loop.
func (c *Comparison) writePacedFloor(b *strings.Builder, runs map[string]*Report) {
	f := c.GoBench[FloorRun]
	ref := runs[c.Candidate]
	if f == nil || ref == nil {
		return
	}
	conns, _ := ref.Params["conns"].(float64)
	channels, _ := ref.Params["channels"].(float64)
	if channels != 1 {
		return
	}
	stepAt := func(r *Report, rate float64) (float64, bool) {
		if r == nil {
			return 0, false
		}
		for _, s := range r.Steps {
			if s.Rate == rate && s.Pass && s.ServerCPUUsPerDelivery > 0 {
				return s.ServerCPUUsPerDelivery, true
			}
		}
		return 0, false
	}
	var rows []string
	for _, g := range f.GoBench {
		subs, pace, ok := pacedFloor(g.Name)
		floor, has := g.Metrics["cpu-ns/delivery"]
		if !ok || !has || float64(subs) != conns {
			continue
		}
		floor /= 1000
		rate := 1 / pace.Seconds()
		row := fmt.Sprintf("| %.0f | one round per %s | %.2f", rate, fmtPace(pace), floor)
		seen := false
		for _, srv := range []string{c.Candidate, c.Baseline} {
			if v, ok := stepAt(runs[srv], rate); ok {
				row += fmt.Sprintf(" | %.2f | %s", v, fmtRatio(v/floor))
				seen = true
			} else {
				row += " | – | –"
			}
		}
		if seen {
			rows = append(rows, row+" |\n")
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "Against the bare-write floor at the same pace (`BenchmarkLoopbackWriteFloor/%.0fsubs-remote-every-*`, from `%s`: "+
		"one write(2) per reader, the readers in another process on the generator's CPU, one round per publish interval; "+
		"both sides' figures include what the process spends while idle between rounds):\n\n", conns, reproduceCommand(f, c.Candidate, FloorRun, c.Quick))
	fmt.Fprintf(b, "| offered/s | floor's pace | floor µs/delivery | %s µs/delivery | × floor | %s µs/delivery | × floor |\n|---:|---|---:|---:|---:|---:|---:|\n", c.Candidate, c.Baseline)
	for _, r := range rows {
		b.WriteString(r)
	}
	b.WriteString("\n")
}

// floorUs is the floor's CPU per delivery in µs for 1,000 recipients (the
// fan-out-like case), else for 100.
func (c *Comparison) floorUs() (float64, bool) {
	f := c.GoBench[FloorRun]
	if f == nil {
		return 0, false
	}
	for i := len(floorBenchmarks) - 1; i >= 0; i-- {
		if v, ok := f.GoBenchMetric(floorBenchmarks[i].name, "cpu-ns/delivery"); ok {
			return v / 1000, true
		}
	}
	return 0, false
}

// protoOrder is the Proto runs in document order: those in Order first.
func (c *Comparison) protoOrder() []string {
	var out []string
	for _, n := range c.Order {
		if c.Proto[n] != nil {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range c.Proto {
		if !contains(out, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// Plots returns the charts the document embeds, by PlotLinks key: p99
// latency against offered rate for every ramp the two servers ran, and one
// for the candidate's Damon and ws-room ramps.
func (c *Comparison) Plots() map[string]Plot {
	out := map[string]Plot{}
	for _, name := range c.Order {
		runs := c.Runs[name]
		if runs == nil || !isRamp(runs[c.Candidate]) && !isRamp(runs[c.Baseline]) {
			continue
		}
		out[name] = RampPlot(name+": p99 latency against offered publish rate", "offered publishes/s (log scale)", []string{c.Candidate, c.Baseline}, runs, maxP99Param(runs))
	}
	if names := c.protoOrder(); len(names) > 0 {
		p := RampPlot(c.Candidate+": Damon and ws-room fan-out, p99 latency against offered rate",
			"offered messages/s: Damon EVENTs, ws-room updates (log scale)", names, c.Proto, maxP99Param(c.Proto))
		if len(p.Series) > 0 {
			out[ProtoPlotName] = p
		}
	}
	return out
}

func isRamp(r *Report) bool { return r != nil && len(r.Steps) > 1 }

// maxP99Param is the runs' p99 bound in ms (their max_p99_ms parameter).
func maxP99Param(runs map[string]*Report) float64 {
	for _, r := range runs {
		if r == nil {
			continue
		}
		if v, ok := r.Params["max_p99_ms"].(float64); ok && v > 0 {
			return v
		}
	}
	return 0
}

// writeProto renders the section of the candidate-only protocol runs.
func (c *Comparison) writeProto(b *strings.Builder) {
	names := c.protoOrder()
	floor, hasFloor := c.floorUs()
	if len(names) == 0 && !hasFloor {
		return
	}
	fmt.Fprintf(b, "## Damon and Decentraland fan-out (%s only)\n\n", c.Candidate)
	fmt.Fprintf(b, "%s speaks neither protocol, so these runs have no baseline column; the yardstick is the bare-write floor below, measured in the same suite on the server's CPU. "+
		"Each run first opens its connections through the protocol's full handshake (Damon: IDENTIFY with the shared token; ws-room: identification, then the server's challenge "+
		"signed through a fresh wallet's ephemeral key) and reports the server's RSS growth per idle connection; then some of the generator's own connections send "+
		"(Damon EVENTs with intent GLOBAL or GROUP; ws-room `peer_update_message`s relayed to the rest of the room) at ramped rates, each message stamped with its "+
		"scheduled send time, as in the fan-out runs above.\n\n", c.Baseline)
	if f := c.GoBench[FloorRun]; f != nil {
		var parts []string
		for _, fb := range floorBenchmarks {
			if v, ok := f.GoBenchMetric(fb.name, "cpu-ns/delivery"); ok {
				parts = append(parts, fmt.Sprintf("%.2f µs to %d sockets in turn", v/1000, fb.subs))
			}
		}
		fmt.Fprintf(b, "**Bare-write floor**: one write(2) of a pre-framed 100-byte WebSocket frame per recipient from one goroutine, no server code "+
			"(`BenchmarkLoopbackWriteFloor`, internal/transport, pinned to the server's CPU), CPU per delivery: %s. "+
			"That is the whole test process's CPU, including its own readers draining the sockets, which the server's figures below do not carry "+
			"(the generator reads in another process): a server at 1.0× the floor spends about what the writes and the reads together cost. Reproduce: `%s`\n\n",
			strings.Join(parts, ", "), reproduceCommand(f, c.Candidate, FloorRun, c.Quick))
		var remote []string
		for _, w := range remoteFloors {
			if v, ok := f.GoBenchMetric(w.name, "cpu-ns/delivery"); ok {
				remote = append(remote, fmt.Sprintf("%.2f µs %s", v/1000, w.what))
			}
		}
		if len(remote) > 0 {
			fmt.Fprintf(b, "With the readers where a server's are, in another process on the generator's CPU (the process's CPU is then the writes' alone, with the loopback receive work the kernel does within them): %s.\n\n",
				strings.Join(remote, ", "))
		}
	}
	if len(names) == 0 {
		return
	}
	if link := c.PlotLinks[ProtoPlotName]; link != "" {
		fmt.Fprintf(b, "![Damon and ws-room fan-out: p99 latency against offered rate](%s)\n\n", link)
	}
	b.WriteString("| run | connections held | server RSS per idle connection (bytes) | highest sustained deliveries/s | at offered messages/s | p50 ms | p99 ms | server CPU per delivery (µs) | × bare-write floor |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		r := c.Proto[n]
		rss := "–"
		if r.Idle != nil && r.Idle.ServerRSSAfterBytes > 0 {
			rss = fmt.Sprintf("%.0f", r.Idle.ServerRSSPerConnBytes)
		}
		row := []string{n, fmt.Sprint(r.Conns.Held), rss}
		if s := r.Best; s != nil {
			ratio := "–"
			if hasFloor && s.ServerCPUUsPerDelivery > 0 {
				ratio = fmtRatio(s.ServerCPUUsPerDelivery / floor)
			}
			row = append(row, fmt.Sprintf("%.0f", s.DeliveriesPerSec), fmt.Sprintf("%.0f", s.Rate),
				fmt.Sprintf("%.2f", s.Latency.P50Ms), fmt.Sprintf("%.2f", s.Latency.P99Ms), optF(s.ServerCPUUsPerDelivery, 2), ratio)
		} else {
			row = append(row, "no step sustained", "–", "–", "–", "–", "–")
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(row, " | "))
	}
	b.WriteString("\n")
	for _, n := range names {
		r := c.Proto[n]
		title := n
		if t, ok := c.Titles[n]; ok {
			title = n + ": " + t
		}
		fmt.Fprintf(b, "### %s\n\n", title)
		if p := paramString(r); p != "" {
			fmt.Fprintf(b, "Parameters: %s\n\n", p)
		}
		fmt.Fprintf(b, "Reproduce: `%s`\n\n", reproduceCommand(r, c.Candidate, n, c.Quick))
		if len(r.Steps) > 0 {
			writeSteps(b, n+" steps", r.Steps)
		}
		writeNotes(b, c.Candidate, r)
	}
}

// AnyQuick reports whether any result came from the quick suite (its
// reproducing command sets BENCH_QUICK=1), e.g. when re-rendering old
// results.
func (c *Comparison) AnyQuick() bool {
	quick := func(r *Report) bool { return r != nil && strings.HasPrefix(r.Command, "BENCH_QUICK=1 ") }
	for _, runs := range c.Runs {
		for _, r := range runs {
			if quick(r) {
				return true
			}
		}
	}
	for _, m := range []map[string]*Report{c.Proto, c.GoBench} {
		for _, r := range m {
			if quick(r) {
				return true
			}
		}
	}
	return false
}
