package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Counters are the samples of a Prometheus text exposition whose metric
// name starts with a prefix, keyed by the series as written
// (name{label="value",...}), labels in the order the server printed them.
// Switchboard's cluster engines count broker messages and store operations
// this way (switchboard_cluster_*); diffing two scrapes says what a phase
// of a benchmark cost the cluster.
type Counters map[string]float64

// ClusterMetricPrefix selects Switchboard's cluster engine counters.
const ClusterMetricPrefix = "switchboard_cluster_"

// Metric names the cluster scenarios read (internal/metrics/cluster.go).
const (
	metricBrokerMessages = "switchboard_cluster_broker_messages_total"
	metricStoreOps       = "switchboard_cluster_store_operations_total"
)

// ParseCounters reads a Prometheus text exposition and keeps the samples
// whose name starts with prefix. Comments, other metrics and samples with a
// timestamp suffix are handled; a malformed sample line is an error, so a
// format change shows instead of silently reading zero.
func ParseCounters(r io.Reader, prefix string) (Counters, error) {
	out := Counters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, prefix) {
			continue
		}
		series, rest, err := splitSeries(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", ln, err)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 || len(fields) > 2 {
			return nil, fmt.Errorf("metrics line %d: want a value after %s", ln, series)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value %q: %w", ln, fields[0], err)
		}
		out[series] += v
	}
	return out, sc.Err()
}

// splitSeries splits "name{labels} value" into the series and the rest,
// honouring quotes (and escaped quotes) inside label values.
func splitSeries(line string) (series, rest string, err error) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return "", "", fmt.Errorf("no value in %q", line)
	}
	if line[i] != '{' {
		return line[:i], line[i:], nil
	}
	inQuote := false
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case inQuote && c == '\\':
			j++ // skip the escaped character
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return line[:j+1], line[j+1:], nil
		}
	}
	return "", "", fmt.Errorf("unterminated labels in %q", line)
}

// seriesName is the metric name of a series key.
func seriesName(series string) string {
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i]
	}
	return series
}

// seriesLabel returns the value of label in a series key ("" if absent).
func seriesLabel(series, label string) string {
	i := strings.IndexByte(series, '{')
	if i < 0 {
		return ""
	}
	s := series[i+1 : len(series)-1]
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return ""
		}
		name := strings.TrimSpace(s[:eq])
		var val strings.Builder
		j := eq + 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[j])
				}
				continue
			}
			val.WriteByte(s[j])
		}
		if name == label {
			return val.String()
		}
		s = strings.TrimPrefix(strings.TrimSpace(s[min(j+1, len(s)):]), ",")
	}
	return ""
}

// Add returns c + o (for summing the scrapes of several nodes).
func (c Counters) Add(o Counters) Counters {
	out := make(Counters, len(c)+len(o))
	for k, v := range c {
		out[k] += v
	}
	for k, v := range o {
		out[k] += v
	}
	return out
}

// Sub returns c - o: what happened between scrape o and scrape c. A series
// absent from o counts from zero (Prometheus client libraries create a
// labelled series on its first increment).
func (c Counters) Sub(o Counters) Counters {
	out := make(Counters, len(c))
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

// Scale returns c with every value multiplied by f.
func (c Counters) Scale(f float64) Counters {
	out := make(Counters, len(c))
	for k, v := range c {
		out[k] = v * f
	}
	return out
}

// Sum adds every series of the metric name.
func (c Counters) Sum(name string) float64 {
	var s float64
	for k, v := range c {
		if seriesName(k) == name {
			s += v
		}
	}
	return s
}

// By groups the series of the metric name by the values of labels, joined
// with "/" (e.g. op and result: "occupancy/ok").
func (c Counters) By(name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range c {
		if seriesName(k) != name {
			continue
		}
		parts := make([]string, len(labels))
		for i, l := range labels {
			parts[i] = seriesLabel(k, l)
		}
		out[strings.Join(parts, "/")] += v
	}
	return out
}

// Scraper reads the counters of several nodes' /metrics endpoints.
type Scraper struct {
	URLs   []string
	Prefix string
	client *http.Client
}

// NewScraper scrapes base+"/metrics" of every node.
func NewScraper(nodes []Target, prefix string) *Scraper {
	s := &Scraper{Prefix: prefix, client: &http.Client{Timeout: 5 * time.Second}}
	for _, n := range nodes {
		s.URLs = append(s.URLs, n.HTTPBase()+"/metrics")
	}
	return s
}

// Scrape returns the sum over all nodes.
func (s *Scraper) Scrape(ctx context.Context) (Counters, error) {
	total := Counters{}
	for _, u := range s.URLs {
		c, err := s.scrapeOne(ctx, u)
		if err != nil {
			return nil, err
		}
		total = total.Add(c)
	}
	return total, nil
}

func (s *Scraper) scrapeOne(ctx context.Context, url string) (Counters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }() // read fully below; a close error changes nothing
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseCounters(resp.Body, s.Prefix)
}

// OpCost is what one phase of a run cost the cluster store: operations per
// unit (subscribe, connect) in total and by op/result, after subtracting
// the background rate (heartbeats, reap scans) measured while idle.
type OpCost struct {
	Units      int64              `json:"units"`
	DurationS  float64            `json:"duration_s"`
	Raw        float64            `json:"raw_ops"`
	Background float64            `json:"background_ops"`
	PerUnit    float64            `json:"ops_per_unit"`
	ByOp       map[string]float64 `json:"ops_per_unit_by_op,omitempty"`
}

// storeOpCost computes the per-unit store operations of a phase from the
// counters before and after it, given the counters' idle growth idle over
// idleDur (the background to subtract, scaled to the phase's length).
func storeOpCost(before, after, idle Counters, idleDur, phaseDur time.Duration, units int64) OpCost {
	delta := after.Sub(before)
	var bg Counters
	if idleDur > 0 {
		bg = idle.Scale(phaseDur.Seconds() / idleDur.Seconds())
	}
	oc := OpCost{Units: units, DurationS: roundTo(phaseDur.Seconds(), 3),
		Raw: delta.Sum(metricStoreOps), Background: roundTo(bg.Sum(metricStoreOps), 2)}
	if units <= 0 {
		return oc
	}
	net := delta.Sub(bg)
	oc.PerUnit = roundTo(max(0, net.Sum(metricStoreOps))/float64(units), 3)
	by := net.By(metricStoreOps, "op", "result")
	oc.ByOp = map[string]float64{}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Only what the phase itself caused: background-only ops net to ~0.
		if v := roundTo(by[k]/float64(units), 3); v >= 0.001 {
			oc.ByOp[k] = v
		}
	}
	return oc
}
