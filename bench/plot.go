package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The picture's geometry, in SVG user units (pixels at 100%).
const (
	plotWidth       = 960
	plotHeight      = 660
	plotLeft        = 80  // room for the y tick labels and title
	plotRight       = 30  // room for the last x tick label
	histTop         = 90  // below the title and the legend
	histBottom      = 330 // the histogram's x axis
	cdfTop          = 390
	cdfBottom       = 610 // the CDF's x axis
	plotBins        = 40  // histogram bins across the x range
	legendTop       = 42  // the first legend row's top
	legendRowHeight = 20
	targetTicks     = 6 // about how many ticks an axis gets
)

// seriesColors are the targets' colors, in order (troupe first): a
// colorblind-safe palette (Okabe–Ito).
var seriesColors = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// SavePlot writes the latency picture of rs to path; the extension picks
// the format. Only SVG (.svg) is drawn: a PNG needs fonts the standard
// library lacks, and any SVG converter makes one (rsvg-convert -o x.png
// x.svg).
func SavePlot(path string, rs []*Result) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
	case ".png":
		return fmt.Errorf("plot %s: PNG is not drawn; write an .svg and convert it (rsvg-convert -o x.png x.svg)", path)
	default:
		return fmt.Errorf("plot %s: unknown picture format, want .svg", path)
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, rs); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// WritePlot writes a standalone SVG picture of rs's start latencies: a
// histogram (the share of each target's starts per bin) above the
// cumulative distribution, on one latency axis in milliseconds, with one
// colored series per target and a legend. Each series is a
// <g class="series" data-target="NAME"> holding a path.histogram and a
// polyline.cdf.
func WritePlot(w io.Writer, rs []*Result) error {
	p := newPlot(rs)
	var legend strings.Builder
	rows := p.legend(&legend)
	// Each legend row after the first pushes the panels down.
	dy := (rows - 1) * legendRowHeight
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
`, plotWidth, plotHeight+dy, plotWidth, plotHeight+dy)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", plotLeft, xmlText(p.title()))
	b.WriteString(legend.String())
	fmt.Fprintf(&b, `<g transform="translate(0 %d)">`+"\n", dy)
	p.axes(&b)
	for i, r := range rs {
		p.series(&b, r, seriesColors[i%len(seriesColors)])
	}
	b.WriteString("</g>\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// plot holds the scales shared by the histogram and the CDF.
type plot struct {
	rs      []*Result
	xStep   float64 // ms between x ticks
	xMax    float64 // ms at the right end
	yStep   float64 // histogram: percent between y ticks
	yMax    float64 // histogram: percent at the top
	binSize float64 // ms per histogram bin
}

func newPlot(rs []*Result) *plot {
	p := &plot{rs: rs}
	maxMs := 0.0
	for _, r := range rs {
		if r.Summary.Count > 0 {
			maxMs = max(maxMs, millis(r.Summary.Max))
		}
	}
	if maxMs <= 0 {
		maxMs = 1
	}
	p.xStep = niceStep(maxMs / targetTicks)
	p.xMax = math.Ceil(maxMs/p.xStep) * p.xStep
	p.binSize = p.xMax / plotBins
	peak := 0.0
	for _, r := range rs {
		for _, share := range p.histogram(r) {
			peak = max(peak, share)
		}
	}
	if peak <= 0 {
		peak = 1
	}
	p.yStep = niceStep(peak / 4)
	p.yMax = math.Ceil(peak/p.yStep) * p.yStep
	return p
}

// histogram is the percentage of r's successful starts in each bin.
func (p *plot) histogram(r *Result) []float64 {
	shares := make([]float64, plotBins)
	if len(r.Latencies) == 0 {
		return shares
	}
	for _, d := range r.Latencies {
		i := min(int(millis(d)/p.binSize), plotBins-1)
		shares[i]++
	}
	for i := range shares {
		shares[i] *= 100 / float64(len(r.Latencies))
	}
	return shares
}

func (p *plot) title() string {
	if len(p.rs) == 0 {
		return "Start latency: no results"
	}
	r := p.rs[0]
	at := "all at once"
	if r.Concurrency < r.N {
		at = fmt.Sprintf("concurrency %d", r.Concurrency)
	}
	return fmt.Sprintf("Start latency as a client sees it: %d starts, %s", r.N, at)
}

// x maps milliseconds to the picture's x.
func (p *plot) x(ms float64) float64 {
	return plotLeft + ms/p.xMax*(plotWidth-plotLeft-plotRight)
}

// yHist maps a histogram percentage to y.
func (p *plot) yHist(pct float64) float64 {
	return histBottom - pct/p.yMax*(histBottom-histTop)
}

// yCDF maps a cumulative fraction (0 to 1) to y.
func yCDF(f float64) float64 { return cdfBottom - f*(cdfBottom-cdfTop) }

// legend writes one entry per target, wrapping to a new row when the
// picture's width is used up, and returns the number of rows.
func (p *plot) legend(b *strings.Builder) int {
	b.WriteString(`<g class="legend">` + "\n")
	x, y, rows := float64(plotLeft), float64(legendTop), 1
	for i, r := range p.rs {
		color := seriesColors[i%len(seriesColors)]
		label := fmt.Sprintf("%s (%d ok, %.1f/s, p99 %s)", r.Target, r.Summary.Count, r.PerSecond, wholeMs(r.Summary.P99))
		// No font metrics here: 12px sans-serif averages under 7 units
		// a character, so this errs on the side of room.
		width := 20 + 7*float64(len(label)) + 24
		if x > plotLeft && x+width > plotWidth-plotRight {
			x, y, rows = plotLeft, y+legendRowHeight, rows+1
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="14" height="14" fill="%s"/>`+"\n", x, y, color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+20, y+12, xmlText(label))
		x += width
	}
	b.WriteString("</g>\n")
	return rows
}

func (p *plot) axes(b *strings.Builder) {
	b.WriteString(`<g class="axes" stroke="#999" stroke-width="1">` + "\n")
	right := float64(plotWidth - plotRight)
	for _, panel := range []struct{ top, bottom float64 }{{histTop, histBottom}, {cdfTop, cdfBottom}} {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`+"\n", plotLeft, panel.top, plotLeft, panel.bottom)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", plotLeft, panel.bottom, right, panel.bottom)
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g class="ticks" fill="#333">` + "\n")
	// x ticks under both panels, light grid lines through them.
	for v := 0.0; v <= p.xMax+p.xStep/2; v += p.xStep {
		x := p.x(v)
		for _, panel := range []struct{ top, bottom float64 }{{histTop, histBottom}, {cdfTop, cdfBottom}} {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x, panel.top, x, panel.bottom)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, panel.bottom+16, tickLabel(v, p.xStep))
		}
	}
	for v := 0.0; v <= p.yMax+p.yStep/2; v += p.yStep {
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s%%</text>`+"\n", plotLeft-6, p.yHist(v)+4, tickLabel(v, p.yStep))
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := yCDF(f)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", plotLeft, y, plotWidth-plotRight, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", plotLeft-6, y+4, f*100)
	}
	// Axis titles.
	mid := (plotLeft + plotWidth - plotRight) / 2
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">start latency (ms), histogram</text>`+"\n", mid, histBottom+34)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">start latency (ms), cumulative</text>`+"\n", mid, cdfBottom+34)
	fmt.Fprintf(b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">share of starts</text>`+"\n", (histTop+histBottom)/2)
	fmt.Fprintf(b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">starts done by then</text>`+"\n", (cdfTop+cdfBottom)/2)
	b.WriteString("</g>\n")
}

// series draws one target: its histogram as a filled step outline, its CDF
// as a step line.
func (p *plot) series(b *strings.Builder, r *Result, color string) {
	fmt.Fprintf(b, `<g class="series" data-target="%s">`+"\n", xmlText(r.Target))
	var d strings.Builder
	fmt.Fprintf(&d, "M%.1f %.1f", p.x(0), p.yHist(0))
	for i, share := range p.histogram(r) {
		y := p.yHist(share)
		fmt.Fprintf(&d, " L%.1f %.1f L%.1f %.1f", p.x(float64(i)*p.binSize), y, p.x(float64(i+1)*p.binSize), y)
	}
	fmt.Fprintf(&d, " L%.1f %.1f Z", p.x(p.xMax), p.yHist(0))
	fmt.Fprintf(b, `<path class="histogram" d="%s" fill="%s" fill-opacity="0.25" stroke="%s" stroke-width="1.5"/>`+"\n", d.String(), color, color)

	sorted := slices.Clone(r.Latencies)
	slices.Sort(sorted)
	var pts strings.Builder
	fmt.Fprintf(&pts, "%.1f,%.1f", p.x(0), yCDF(0))
	n := float64(len(sorted))
	for i, lat := range sorted {
		x := p.x(millis(lat))
		fmt.Fprintf(&pts, " %.1f,%.1f %.1f,%.1f", x, yCDF(float64(i)/n), x, yCDF(float64(i+1)/n))
	}
	fmt.Fprintf(b, `<polyline class="cdf" points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", pts.String(), color)
	b.WriteString("</g>\n")
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if raw <= m*mag*(1+1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// tickLabel prints v with as many decimals as step needs.
func tickLabel(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
