package loadgen

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot is a line chart written as a self-contained SVG by WriteSVG: the
// benchmark document's figures are drawn by the load generator itself, so
// `make bench` needs no plotting tool.
type Plot struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []PlotSeries
	// HLine, when > 0, draws a dashed horizontal line at that y (a
	// threshold such as the p99 bound), labelled HLineLabel.
	HLine      float64
	HLineLabel string
}

// PlotSeries is one line; points are drawn in the order given.
type PlotSeries struct {
	Name   string
	Points []PlotPoint
}

// PlotPoint is one measurement. Failed points (a step that did not
// sustain its rate) are drawn hollow.
type PlotPoint struct {
	X, Y   float64
	Failed bool
}

// Plot geometry (SVG user units).
const (
	plotW, plotH                             = 720, 420
	plotLeft, plotRight, plotTop, plotBottom = 70, 160, 40, 55
)

// plotColors are distinguishable for the common forms of colour blindness
// (Okabe-Ito).
var plotColors = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"}

// axis maps data values to pixels on one axis.
type axis struct {
	log      bool
	lo, hi   float64 // data range (log10 of it for a log axis)
	pxLo, px float64 // pixel of lo, pixel length (negative for y)
}

func (a axis) pos(v float64) float64 {
	if a.log {
		v = math.Log10(v)
	}
	if a.hi == a.lo {
		return a.pxLo
	}
	return a.pxLo + (v-a.lo)/(a.hi-a.lo)*a.px
}

// newAxis covers the values (positive ones only on a log axis) with some
// room, and returns the tick values to label.
func newAxis(vals []float64, log bool, pxLo, px float64) (axis, []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if log && v <= 0 {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	if log {
		a := axis{log: true, lo: math.Floor(math.Log10(lo)), hi: math.Ceil(math.Log10(hi)), pxLo: pxLo, px: px}
		if a.hi == a.lo {
			a.hi++
		}
		var ticks []float64
		for e := a.lo; e <= a.hi+1e-9; e++ {
			for _, m := range []float64{1, 2, 5} {
				if v := m * math.Pow(10, e); math.Log10(v) <= a.hi+1e-9 {
					ticks = append(ticks, v)
				}
			}
		}
		return a, ticks
	}
	lo = math.Min(lo, 0)
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 6)
	hi = math.Ceil(hi/step) * step
	var ticks []float64
	for v := lo; v <= hi+step/2; v += step {
		ticks = append(ticks, v)
	}
	return axis{lo: lo, hi: hi, pxLo: pxLo, px: px}, ticks
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case math.Abs(v) >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// esc escapes text for an SVG text node or attribute.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails
	return b.String()
}

// WriteSVG writes the chart. Points with a non-positive coordinate on a
// log axis cannot be drawn and are left out.
func (p Plot) WriteSVG(w io.Writer) error {
	var xs, ys []float64
	for _, s := range p.Series {
		for _, pt := range s.Points {
			xs, ys = append(xs, pt.X), append(ys, pt.Y)
		}
	}
	if p.HLine > 0 {
		ys = append(ys, p.HLine)
	}
	innerW, innerH := float64(plotW-plotLeft-plotRight), float64(plotH-plotTop-plotBottom)
	ax, xticks := newAxis(xs, p.LogX, plotLeft, innerW)
	ay, yticks := newAxis(ys, p.LogY, plotTop+innerH, -innerH)
	drawable := func(pt PlotPoint) bool { return (!p.LogX || pt.X > 0) && (!p.LogY || pt.Y > 0) }

	var b bytes.Buffer
	f := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	f("<title>%s</title>\n", esc(p.Title))
	f(`<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", plotW, plotH)
	f(`<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, esc(p.Title))
	// Grid and tick labels.
	f(`<g class="grid" stroke="#dddddd" stroke-width="1">` + "\n")
	for _, t := range xticks {
		x := ax.pos(t)
		f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f"/>`+"\n", x, plotTop, x, plotTop+innerH)
	}
	for _, t := range yticks {
		y := ay.pos(t)
		f(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", plotLeft, y, plotLeft+innerW, y)
	}
	f("</g>\n")
	f(`<g class="ticks" fill="#333333">` + "\n")
	for _, t := range xticks {
		f(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", ax.pos(t), plotTop+innerH+16, esc(fmtTick(t)))
	}
	for _, t := range yticks {
		f(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-6, ay.pos(t)+4, esc(fmtTick(t)))
	}
	f("</g>\n")
	// Axes and their labels.
	f(`<rect class="frame" x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333333"/>`+"\n", plotLeft, plotTop, innerW, innerH)
	f(`<text class="xlabel" x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", plotLeft+innerW/2, plotH-12, esc(p.XLabel))
	f(`<text class="ylabel" x="0" y="0" text-anchor="middle" transform="translate(18 %.1f) rotate(-90)">%s</text>`+"\n",
		plotTop+innerH/2, esc(p.YLabel))
	if p.HLine > 0 {
		y := ay.pos(p.HLine)
		f(`<line class="threshold" x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999999" stroke-dasharray="6 4"/>`+"\n",
			plotLeft, y, plotLeft+innerW, y)
		f(`<text x="%.1f" y="%.1f" text-anchor="end" fill="#666666">%s</text>`+"\n", plotLeft+innerW-4, y-5, esc(p.HLineLabel))
	}
	// Series, then the legend on the right.
	for i, s := range p.Series {
		col := plotColors[i%len(plotColors)]
		f(`<g class="series" data-series="%s" stroke="%s" fill="%s">`+"\n", esc(s.Name), col, col)
		var pts []string
		for _, pt := range s.Points {
			if drawable(pt) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", ax.pos(pt.X), ay.pos(pt.Y)))
			}
		}
		f(`<polyline fill="none" stroke-width="2" points="%s"/>`+"\n", strings.Join(pts, " "))
		for _, pt := range s.Points {
			if !drawable(pt) {
				continue
			}
			fill, note := col, ""
			if pt.Failed {
				fill, note = "#ffffff", " (failed)"
			}
			f(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke-width="1.5"><title>%s: x %s, y %s%s</title></circle>`+"\n",
				ax.pos(pt.X), ay.pos(pt.Y), fill, esc(s.Name), fmtTick(pt.X), fmtTick(pt.Y), note)
		}
		f("</g>\n")
		ly := plotTop + 10 + 20*i
		lx := plotLeft + int(innerW) + 15
		f(`<g class="legend"><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text></g>`+"\n",
			lx, ly, lx+20, ly, col, lx+26, ly+4, esc(s.Name))
	}
	if len(p.Series) > 0 {
		ly := plotTop + 10 + 20*len(p.Series)
		f(`<text x="%d" y="%d" fill="#666666" font-size="11">hollow: step failed</text>`+"\n", plotLeft+int(innerW)+15, ly+4)
	}
	f("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// RampPlot is the p99-latency-against-offered-rate chart of ramps, one
// series per label (label → report; labels in the order given); xLabel
// names the offered operation.
func RampPlot(title, xLabel string, labels []string, reports map[string]*Report, bound float64) Plot {
	p := Plot{Title: title, XLabel: xLabel, YLabel: "p99 latency (ms, log scale)",
		LogX: true, LogY: true, HLine: bound}
	if bound > 0 {
		p.HLineLabel = fmt.Sprintf("p99 bound %g ms", bound)
	}
	for _, l := range labels {
		r := reports[l]
		if r == nil || len(r.Steps) == 0 {
			continue
		}
		s := PlotSeries{Name: l}
		for _, st := range r.Steps {
			s.Points = append(s.Points, PlotPoint{X: st.Rate, Y: st.Latency.P99Ms, Failed: !st.Pass})
		}
		p.Series = append(p.Series, s)
	}
	return p
}
