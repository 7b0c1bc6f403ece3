package loadgen

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// svgElem is one element of a parsed SVG: name, attributes, direct text.
type svgElem struct {
	name  string
	attrs map[string]string
	text  string
	// series is the data-series of the enclosing group, if any.
	series string
}

// parseSVG decodes the whole document with encoding/xml (so it must be
// well-formed) and flattens it.
func parseSVG(t *testing.T, b []byte) []svgElem {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []svgElem
	var stack []int
	series := []string{""}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			e := svgElem{name: tk.Name.Local, attrs: map[string]string{}, series: series[len(series)-1]}
			for _, a := range tk.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			if s, ok := e.attrs["data-series"]; ok {
				e.series = s
			}
			series = append(series, e.series)
			out = append(out, e)
			stack = append(stack, len(out)-1)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			series = series[:len(series)-1]
		case xml.CharData:
			if len(stack) > 0 {
				out[stack[len(stack)-1]].text += string(tk)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatal("unclosed elements")
	}
	return out
}

func TestRampPlotSVG(t *testing.T) {
	ramp := func(p99s ...float64) *Report {
		r := &Report{}
		for i, p := range p99s {
			r.Steps = append(r.Steps, Step{Rate: float64(10 * (i + 1)), Latency: Latency{P99Ms: p}, Pass: p <= 100})
		}
		return r
	}
	reports := map[string]*Report{"switchboard": ramp(2, 5, 40, 300), "soketi & co": ramp(3, 8, 1200)}
	p := RampPlot("fanout-2k-1ch: p99 <latency>", "offered rate (messages/s, log scale)", []string{"switchboard", "soketi & co", "absent"}, reports, 100)
	var b bytes.Buffer
	if err := p.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	els := parseSVG(t, b.Bytes())
	if els[0].name != "svg" || els[0].attrs["viewBox"] == "" {
		t.Fatalf("root %+v", els[0])
	}
	texts := map[string]bool{}
	lines := map[string]string{} // series → polyline points
	circles := map[string][]svgElem{}
	for _, e := range els {
		switch e.name {
		case "text", "title":
			texts[e.text] = true
		case "polyline":
			lines[e.series] = e.attrs["points"]
		case "circle":
			circles[e.series] = append(circles[e.series], e)
		}
	}
	for _, want := range []string{"offered rate (messages/s, log scale)", "p99 latency (ms, log scale)",
		"fanout-2k-1ch: p99 <latency>", "switchboard", "soketi & co", "p99 bound 100 ms", "1", "10", "100", "1000"} {
		if !texts[want] {
			t.Errorf("no text %q", want)
		}
	}
	if len(lines) != 2 || len(circles["switchboard"]) != 4 || len(circles["soketi & co"]) != 3 {
		t.Fatalf("series %v, circles %d/%d", lines, len(circles["switchboard"]), len(circles["soketi & co"]))
	}
	// Higher latency is higher on the chart (smaller y), on a log scale:
	// 2 → 5 → 40 → 300 ms climbs, and equal ratios take equal heights.
	var ys []float64
	for _, c := range circles["switchboard"] {
		y, err := strconv.ParseFloat(c.attrs["cy"], 64)
		if err != nil {
			t.Fatal(err)
		}
		ys = append(ys, y)
	}
	for i := 1; i < len(ys); i++ {
		if ys[i] >= ys[i-1] {
			t.Fatalf("y not increasing with latency: %v", ys)
		}
	}
	// A failed step (300 ms > bound) is hollow; passed ones are filled.
	if f := circles["switchboard"][3].attrs["fill"]; f != "#ffffff" {
		t.Errorf("failed point fill %q", f)
	}
	if f := circles["switchboard"][0].attrs["fill"]; f == "#ffffff" {
		t.Error("passed point drawn hollow")
	}
	if !strings.Contains(b.String(), "soketi &amp; co") {
		t.Error("names are not escaped")
	}
}

// Linear axes start at zero and cover the data; a point that a log axis
// cannot show (y = 0) is left out rather than drawn at -Inf.
func TestPlotAxes(t *testing.T) {
	a, ticks := newAxis([]float64{3, 47}, false, 0, 100)
	if ticks[0] != 0 || ticks[len(ticks)-1] < 47 || a.pos(0) != 0 || a.pos(ticks[len(ticks)-1]) != 100 {
		t.Fatalf("linear axis %+v ticks %v", a, ticks)
	}
	p := Plot{LogY: true, Series: []PlotSeries{{Name: "s", Points: []PlotPoint{{X: 1, Y: 0}, {X: 2, Y: 10}}}}}
	var b bytes.Buffer
	if err := p.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range parseSVG(t, b.Bytes()) {
		if e.name == "circle" {
			n++
		}
	}
	if n != 1 || strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
		t.Fatalf("%d circles:\n%s", n, b.String())
	}
}
