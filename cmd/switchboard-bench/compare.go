package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/loadgen"
)

// runCompare renders the side-by-side document from --json results laid
// out as <results>/<server>/<run>.json.
func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	results := fs.String("results", "bench/results", "results directory")
	cand := fs.String("candidate", "switchboard", "server label for the left column (ratio numerator)")
	base := fs.String("baseline", "soketi", "server label for the right column (ratio denominator)")
	out := fs.String("out", "docs/benchmarks.md", "output file (- for stdout)")
	order := fs.String("order", "", "comma list of run names in document order")
	plotsDir := fs.String("plots-dir", "", "where the SVG charts go (default: bench/ next to --out; none with --out -)")
	quick := fs.Bool("quick", false, "the results come from the quick suite (BENCH_QUICK=1): say so in the document")
	var meta, titles multiFlag
	fs.Var(&meta, "meta", "extra key=value fact for the header (repeatable)")
	fs.Var(&titles, "title", "run=description (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ord []string
	if *order != "" {
		ord = strings.Split(*order, ",")
	}
	c, err := loadgen.LoadComparison(*results, *cand, *base, ord)
	if err != nil {
		return err
	}
	// The date is when the measurements started, not when the document was
	// rendered (--render-only can re-render old results).
	var first time.Time
	for _, runs := range c.Runs {
		for _, r := range runs {
			if first.IsZero() || r.StartedAt.Before(first) {
				first = r.StartedAt
			}
		}
	}
	if first.IsZero() {
		first = time.Now()
	}
	c.Meta = append([][2]string{{"date", first.UTC().Format("2006-01-02 15:04 UTC")}}, loadgen.MachineFacts()...)
	for _, kv := range meta {
		k, v, _ := strings.Cut(kv, "=")
		c.Meta = append(c.Meta, [2]string{k, v})
	}
	c.Quick = *quick || c.AnyQuick()
	c.Titles = map[string]string{}
	for _, kv := range titles {
		k, v, _ := strings.Cut(kv, "=")
		c.Titles[k] = v
	}
	if *out == "-" {
		return c.WriteMarkdown(os.Stdout)
	}
	dir := *plotsDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(*out), "bench")
	}
	if c.PlotLinks, err = writePlots(c, dir, filepath.Dir(*out)); err != nil {
		return err
	}
	kept := keptTail(*out)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := c.WriteMarkdown(f); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	if len(kept) > 0 {
		if _, err := fmt.Fprintf(f, "\n%s", kept); err != nil {
			_ = f.Close()
			return err
		}
	}
	// Close reports a write the OS deferred: the document is complete only
	// if it succeeds.
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", *out)
	return nil
}

// writePlots writes every chart of the comparison as dir/<name>-p99.svg
// and returns the links to them relative to docDir.
func writePlots(c *loadgen.Comparison, dir, docDir string) (map[string]string, error) {
	plots := c.Plots()
	if len(plots) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	links := map[string]string{}
	for name, p := range plots {
		path := filepath.Join(dir, name+"-p99.svg")
		if err := writeSVG(path, p); err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(docDir, path)
		if err != nil {
			return nil, err
		}
		links[name] = filepath.ToSlash(rel)
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return links, nil
}

func writeSVG(path string, p loadgen.Plot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.WriteSVG(f); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// keptMarker starts the hand-written part of the output file (sections
// from Go benchmarks, e.g. Talo versus Pusher): a re-render keeps it.
const keptMarker = "<!-- hand-written below; switchboard-bench compare keeps it -->"

// keptTail is the existing file from keptMarker on, or nil.
func keptTail(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	i := strings.Index(string(b), keptMarker)
	if i < 0 {
		return nil
	}
	return b[i:]
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
