package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// GoBenchResult is one line of `go test -bench` output: the benchmark's
// name (with the -N GOMAXPROCS suffix removed), its iteration count and
// every "value unit" pair, e.g. "ns/op" or a custom "cpu-ns/delivery".
type GoBenchResult struct {
	Name       string             `json:"name"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"`
}

// ParseGoBench reads `go test -bench` output and returns its result lines
// in order; every other line (goos, PASS, ok …) is skipped.
func ParseGoBench(r io.Reader) ([]GoBenchResult, error) {
	var out []GoBenchResult
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		res := GoBenchResult{Name: trimProcs(f[0]), Iterations: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("go bench line %q: value %q: %w", sc.Text(), f[i], err)
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// trimProcs removes the "-N" GOMAXPROCS suffix go test appends.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// GoBenchReport wraps Go benchmark results in a Report, so that they sit
// in the results directory next to the load generator's, in one schema.
func GoBenchReport(results []GoBenchResult, env Env, params map[string]any) *Report {
	return &Report{
		SchemaVersion: ReportSchemaVersion,
		Run:           env.Run,
		Command:       env.Command,
		GeneratorArgs: env.GeneratorArgs,
		Protocol:      "go-bench",
		Scenario:      "gobench",
		Label:         env.Label,
		LoadAvg1:      loadAvg1(),
		StartedAt:     time.Now().UTC().Truncate(time.Second),
		Params:        params,
		GoBench:       results,
	}
}

// GoBenchMetric returns metric unit of the benchmark name from r.
func (r *Report) GoBenchMetric(name, unit string) (float64, bool) {
	for _, b := range r.GoBench {
		if b.Name == name {
			v, ok := b.Metrics[unit]
			return v, ok
		}
	}
	return 0, false
}
