package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportSchemaVersion is the version of the JSON form of Report. Fields
// are only ever added; a change that renames, removes or reinterprets one
// bumps it. docs/bench/results.md documents every field (a test checks
// that it names them all).
const ReportSchemaVersion = 1

// Report is the outcome of one scenario run; it is what --json prints and
// what the comparison document is built from.
type Report struct {
	SchemaVersion int `json:"schema_version"`
	// Run is the result's name in the suite (bench/run.sh), e.g.
	// "fanout-2k-1ch"; Command reproduces it; GeneratorArgs are the
	// generator's own arguments.
	Run           string   `json:"run,omitempty"`
	Command       string   `json:"command,omitempty"`
	GeneratorArgs []string `json:"generator_args,omitempty"`
	// Protocol is what the generator spoke: pusher, damon or dcl.
	Protocol string `json:"protocol"`
	Scenario string `json:"scenario"`
	Label    string `json:"label,omitempty"`
	Target   string `json:"target"`
	// LoadAvg1 is the machine's 1-minute load average when the run started.
	LoadAvg1 float64 `json:"load_avg_1"`
	// BackgroundCores is the machine's busy CPU measured for one second
	// before the run, while neither the generator nor (normally) the server
	// had work: other processes competing for the cores.
	BackgroundCores float64        `json:"background_cores"`
	StartedAt       time.Time      `json:"started_at"`
	DurationS       float64        `json:"duration_s"`
	Params          map[string]any `json:"params"`
	Conns           ConnStats      `json:"connections"`
	Steps           []Step         `json:"steps,omitempty"`
	// Best is the highest-rate step that passed (fan-out ramps).
	Best  *Step        `json:"best,omitempty"`
	Idle  *IdleResult  `json:"idle,omitempty"`
	Churn *ChurnResult `json:"churn,omitempty"`
	// GoBench holds Go benchmark results (scenario "gobench"), such as the
	// bare loopback write floor the protocol fan-outs are compared with.
	GoBench   []GoBenchResult `json:"go_bench,omitempty"`
	FileLimit FileLimit       `json:"file_limit"`
	// GeneratorRSSBytes is this process's RSS at the end of the run.
	GeneratorRSSBytes int64    `json:"generator_rss_bytes,omitempty"`
	Notes             []string `json:"notes,omitempty"`
}

// ConnStats summarises connection setup.
type ConnStats struct {
	Requested      int          `json:"requested"`
	Attempted      int64        `json:"attempted"`
	Held           int          `json:"held"`
	ConnectErrors  int64        `json:"connect_errors"`
	SetupErrors    int64        `json:"setup_errors"`
	ServerErrors   int64        `json:"server_errors"`
	Lost           int          `json:"lost_during_run"`
	Errors         []ErrorCount `json:"errors,omitempty"`
	ConnectLatency Latency      `json:"connect_latency"`
}

// Step is one measurement window at one offered rate.
type Step struct {
	Name string `json:"name"`
	// Rate is the offered rate of the scenario's operation (publishes/s,
	// client events/s, joins/s).
	Rate       float64 `json:"rate"`
	Sent       int64   `json:"sent"`
	SendErrors int64   `json:"send_errors"`
	// SendLagMaxMs is how far the sender fell behind its schedule at worst.
	SendLagMaxMs float64 `json:"send_lag_max_ms"`
	// SendLatency is the duration of each send (the HTTP round trip of a
	// publish); a server slow to accept publishes shows here first.
	SendLatency      Latency  `json:"send_latency"`
	Expected         int64    `json:"expected"`
	Received         int64    `json:"received"`
	Missing          int64    `json:"missing"`
	Extra            int64    `json:"extra,omitempty"`
	DurationS        float64  `json:"duration_s"`
	DeliveriesPerSec float64  `json:"deliveries_per_s"`
	Latency          Latency  `json:"latency"`
	RemoveLatency    *Latency `json:"remove_latency,omitempty"`
	// Server cost over the window (needs --server-pid).
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery,omitempty"`
	ServerCores            float64 `json:"server_cores,omitempty"`
	ServerRSSBytes         int64   `json:"server_rss_bytes,omitempty"`
	GeneratorCores         float64 `json:"generator_cores"`
	// MachineCores is all CPU time spent on the machine over the window
	// (including kernel softirq work and any other process).
	MachineCores float64 `json:"machine_cores,omitempty"`
	Pass         bool    `json:"pass"`
	FailReason   string  `json:"fail_reason,omitempty"`
}

// IdleResult is the idle scenario's memory accounting.
type IdleResult struct {
	Held                  int     `json:"held"`
	HoldS                 float64 `json:"hold_s"`
	ServerRSSBeforeBytes  int64   `json:"server_rss_before_bytes,omitempty"`
	ServerRSSAfterBytes   int64   `json:"server_rss_after_bytes,omitempty"`
	ServerRSSPerConnBytes float64 `json:"server_rss_per_conn_bytes,omitempty"`
	ServerCoresIdle       float64 `json:"server_cores_idle,omitempty"`
	// ConnectS is the connect storm's wall time (first dial to last
	// subscription); ServerCPUConnectS and GenCPUConnectS the server's and
	// the generator's CPU over it (a storm whose generator was busy all
	// the time measures the generator).
	ConnectS           float64 `json:"connect_s,omitempty"`
	ServerCPUConnectS  float64 `json:"server_cpu_connect_s,omitempty"`
	GenCPUConnectS     float64 `json:"generator_cpu_connect_s,omitempty"`
	GenRSSPerConnBytes float64 `json:"generator_rss_per_conn_bytes"`
	Lost               int     `json:"lost"`
}

// ChurnResult is the churn scenario's outcome.
type ChurnResult struct {
	Rate             float64 `json:"rate"`
	Started          int64   `json:"started"`
	Completed        int64   `json:"completed"`
	Failed           int64   `json:"failed"`
	CompletedPerSec  float64 `json:"completed_per_s"`
	ConnectLatency   Latency `json:"connect_latency"`
	SubscribeLatency Latency `json:"subscribe_latency"`
	// CycleLatency runs from the scheduled start to subscription success,
	// so waiting for a free slot counts (no coordinated omission).
	CycleLatency      Latency `json:"cycle_latency"`
	ServerCPUUsPerOp  float64 `json:"server_cpu_us_per_op,omitempty"`
	ServerCores       float64 `json:"server_cores,omitempty"`
	GeneratorCores    float64 `json:"generator_cores"`
	MaxInFlight       int     `json:"max_in_flight"`
	InFlightLimitHits int64   `json:"in_flight_limit_hits"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a human-readable summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s", r.Scenario)
	if r.Label != "" {
		fmt.Fprintf(&b, " [%s]", r.Label)
	}
	fmt.Fprintf(&b, " against %s, %.1fs; before the run: load average %.2f, %.2f cores busy\n", r.Target, r.DurationS, r.LoadAvg1, r.BackgroundCores)
	c := r.Conns
	fmt.Fprintf(&b, "connections: %d held of %d requested (%d attempted), connect errors %d, setup errors %d, server errors %d, lost %d\n",
		c.Held, c.Requested, c.Attempted, c.ConnectErrors, c.SetupErrors, c.ServerErrors, c.Lost)
	if c.ConnectLatency.Count > 0 {
		fmt.Fprintf(&b, "connect latency: %s\n", fmtLatency(c.ConnectLatency))
	}
	for _, e := range c.Errors {
		fmt.Fprintf(&b, "  error ×%d: %s\n", e.Count, e.Message)
	}
	if len(r.Steps) > 0 {
		// tw writes into b, a strings.Builder, whose writes cannot fail.
		tw := tabwriter.NewWriter(&b, 2, 0, 2, ' ', tabwriter.AlignRight)
		_, _ = fmt.Fprintln(tw, "step\trate/s\tsent\tdeliv/s\tp50ms\tp90ms\tp99ms\tp99.9ms\tmaxms\tmissing\tsrv µs/dlv\tsrv cores\tgen cores\tall cores\tresult\t")
		for _, s := range r.Steps {
			res := "ok"
			if !s.Pass {
				res = "FAIL " + s.FailReason
			}
			_, _ = fmt.Fprintf(tw, "%s\t%.0f\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%.2f\t%s\t%s\t\n",
				s.Name, s.Rate, s.Sent, s.DeliveriesPerSec, s.Latency.P50Ms, s.Latency.P90Ms, s.Latency.P99Ms,
				s.Latency.P999Ms, s.Latency.MaxMs, s.Missing, optF(s.ServerCPUUsPerDelivery, 2), optF(s.ServerCores, 2),
				s.GeneratorCores, optF(s.MachineCores, 2), res)
		}
		_ = tw.Flush()
		for _, s := range r.Steps {
			if s.RemoveLatency != nil {
				fmt.Fprintf(&b, "%s member_removed latency: %s\n", s.Name, fmtLatency(*s.RemoveLatency))
			}
		}
	}
	if r.Best != nil {
		fmt.Fprintf(&b, "highest sustained: %.0f/s offered, %.0f deliveries/s, p99 %.2f ms\n",
			r.Best.Rate, r.Best.DeliveriesPerSec, r.Best.Latency.P99Ms)
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(&b, "connect storm: %d connections in %.2fs, server CPU %.2fs, generator CPU %.2fs\n", i.Held, i.ConnectS, i.ServerCPUConnectS, i.GenCPUConnectS)
		fmt.Fprintf(&b, "idle: %d connections held %.0fs, lost %d\n", i.Held, i.HoldS, i.Lost)
		if i.ServerRSSAfterBytes > 0 {
			fmt.Fprintf(&b, "server RSS %s -> %s: %.0f bytes/connection, %.3f cores while idle\n",
				fmtBytes(i.ServerRSSBeforeBytes), fmtBytes(i.ServerRSSAfterBytes), i.ServerRSSPerConnBytes, i.ServerCoresIdle)
		}
		fmt.Fprintf(&b, "generator RSS per connection: %.0f bytes\n", i.GenRSSPerConnBytes)
	}
	if ch := r.Churn; ch != nil {
		fmt.Fprintf(&b, "churn: %.0f/s offered, %d started, %d completed (%.1f/s), %d failed, max in flight %d\n",
			ch.Rate, ch.Started, ch.Completed, ch.CompletedPerSec, ch.Failed, ch.MaxInFlight)
		fmt.Fprintf(&b, "  connect:   %s\n  subscribe: %s\n  cycle:     %s\n",
			fmtLatency(ch.ConnectLatency), fmtLatency(ch.SubscribeLatency), fmtLatency(ch.CycleLatency))
		if ch.ServerCPUUsPerOp > 0 {
			fmt.Fprintf(&b, "  server: %.1f µs CPU per cycle, %.2f cores\n", ch.ServerCPUUsPerOp, ch.ServerCores)
		}
	}
	fmt.Fprintf(&b, "%s\n", r.FileLimit)
	if r.GeneratorRSSBytes > 0 {
		fmt.Fprintf(&b, "generator RSS %s\n", fmtBytes(r.GeneratorRSSBytes))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtLatency(l Latency) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d mean %.2fms p50 %.2fms p90 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms",
		l.Count, l.MeanMs, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs)
}

func optF(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
