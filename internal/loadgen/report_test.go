package loadgen

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonFields lists the JSON names of t's fields and of every struct type
// reachable from them.
func jsonFields(t reflect.Type, seen map[reflect.Type]bool, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeOf(time.Time{}) {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = true
		jsonFields(f.Type, seen, out)
	}
}

// TestResultsSchemaDocumented: docs/bench/results.md names every field of
// the result JSON, so the documented schema cannot fall behind the code.
func TestResultsSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/bench/results.md")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	jsonFields(reflect.TypeOf(Report{}), map[reflect.Type]bool{}, fields)
	if len(fields) < 50 {
		t.Fatalf("found only %d fields; the reflection walk is broken", len(fields))
	}
	for f := range fields {
		if !bytes.Contains(doc, []byte("`"+f+"`")) {
			t.Errorf("docs/bench/results.md does not document the field %q", f)
		}
	}
	if !bytes.Contains(doc, []byte("`schema_version` is 1")) || ReportSchemaVersion != 1 {
		t.Errorf("the document and ReportSchemaVersion (%d) disagree", ReportSchemaVersion)
	}
}

// TestReportJSONRoundTrip: what --json writes reads back into the same
// report (what the comparison document is built from), with the version,
// the reproducing command and the snake_case names the schema documents.
func TestReportJSONRoundTrip(t *testing.T) {
	in := &Report{
		SchemaVersion: ReportSchemaVersion, Run: "fanout-2k-1ch", Protocol: "pusher", Scenario: "fanout",
		Command:       "bench/run.sh --server switchboard --scenario fanout-2k-1ch",
		GeneratorArgs: []string{"fanout", "--conns", "2000"},
		StartedAt:     time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC),
		Params:        map[string]any{"conns": float64(2000)},
		Steps:         []Step{{Name: "10/s", Rate: 10, Sent: 100, Latency: Latency{Count: 100, P99Ms: 1.5}, Pass: true}},
		Idle:          &IdleResult{Held: 5, ServerRSSPerConnBytes: 4096},
		GoBench:       []GoBenchResult{{Name: "BenchmarkX/1000subs", Iterations: 10, Metrics: map[string]float64{"ns/op": 5}}},
		FileLimit:     FileLimit{Soft: 1024, Hard: 4096, Wanted: 2100, Capped: true},
	}
	var b bytes.Buffer
	if err := in.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"schema_version": 1`, `"run": "fanout-2k-1ch"`, `"p99_ms": 1.5`,
		`"server_rss_per_conn_bytes": 4096`, `"file_limit": {`, `"soft": 1024`, `"ns/op": 5`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}
	var out Report
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Fatalf("round trip changed the report:\n in %+v\nout %+v", in, &out)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/switchboard-rt/switchboard/internal/transport
cpu: AMD EPYC
BenchmarkLoopbackWriteFloor/100subs-2         	    2000	    812345 ns/op	      8123 cpu-ns/delivery	      8123 ns/delivery
BenchmarkLoopbackWriteFloor/1000subs-2        	     200	   8912345 ns/op	      8912 cpu-ns/delivery	      8912 ns/delivery
PASS
ok  	github.com/switchboard-rt/switchboard/internal/transport	4.2s
`
	res, err := ParseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[1].Name != "BenchmarkLoopbackWriteFloor/1000subs" || res[1].Iterations != 200 ||
		res[1].Metrics["cpu-ns/delivery"] != 8912 || res[0].Metrics["ns/op"] != 812345 {
		t.Fatalf("parsed %+v", res)
	}
	r := GoBenchReport(res, Env{Run: "write-floor"}, nil)
	if v, ok := r.GoBenchMetric("BenchmarkLoopbackWriteFloor/100subs", "cpu-ns/delivery"); !ok || v != 8123 {
		t.Fatalf("GoBenchMetric = %v %v", v, ok)
	}
	if _, err := ParseGoBench(strings.NewReader("BenchmarkX-2 10 abc ns/op\n")); err == nil {
		t.Fatal("a result line with a bad value parsed")
	}
}
