package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgNode is any element of the picture, with its children.
type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []svgNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n *svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *svgNode) walk(fn func(*svgNode)) {
	fn(n)
	for i := range n.Children {
		n.Children[i].walk(fn)
	}
}

// latencies spreads n latencies between lo and hi.
func latencies(n int, lo, hi time.Duration) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = lo + time.Duration(i)*(hi-lo)/time.Duration(max(n-1, 1))
	}
	return ds
}

func plotResult(name string, ds []time.Duration) *Result {
	return &Result{Target: name, N: len(ds), Concurrency: 10, Latencies: ds, Summary: Summarize(ds), PerSecond: 100}
}

func TestWritePlot(t *testing.T) {
	tests := []struct {
		name string
		rs   []*Result
	}{
		{"one target", []*Result{plotResult("troupe", latencies(1000, 20*time.Millisecond, 355*time.Millisecond))}},
		{"three targets", []*Result{
			plotResult("troupe", latencies(1000, 20*time.Millisecond, 355*time.Millisecond)),
			plotResult("crun", latencies(1000, 8*time.Millisecond, 90*time.Millisecond)),
			plotResult("containerd <&>", latencies(10, time.Second, 7*time.Second)),
		}},
		{"sub-millisecond", []*Result{plotResult("fake", latencies(5, 10*time.Microsecond, 300*time.Microsecond))}},
		{"a target without successes", []*Result{plotResult("troupe", latencies(3, time.Millisecond, 3*time.Millisecond)), plotResult("runc", nil)}},
		{"nothing", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WritePlot(&b, tc.rs); err != nil {
				t.Fatal(err)
			}
			// Well-formed: a strict decoder reads every token to the end.
			dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
			for {
				if _, err := dec.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
				}
			}
			var root svgNode
			if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
				t.Fatal(err)
			}
			if root.XMLName.Space != "http://www.w3.org/2000/svg" || root.XMLName.Local != "svg" {
				t.Fatalf("root element %v, want svg in the SVG namespace", root.XMLName)
			}
			var series []*svgNode
			var legend, texts []string
			root.walk(func(n *svgNode) {
				switch {
				case n.XMLName.Local == "g" && n.attr("class") == "series":
					series = append(series, n)
				case n.XMLName.Local == "g" && n.attr("class") == "legend":
					for _, c := range n.Children {
						if c.XMLName.Local == "text" {
							legend = append(legend, c.Text)
						}
					}
				case n.XMLName.Local == "text":
					texts = append(texts, n.Text)
				}
			})
			if len(series) != len(tc.rs) || len(legend) != len(tc.rs) {
				t.Fatalf("%d series and %d legend entries, want %d", len(series), len(legend), len(tc.rs))
			}
			colors := map[string]bool{}
			for i, s := range series {
				if got := s.attr("data-target"); got != tc.rs[i].Target {
					t.Errorf("series %d is %q, want %q", i, got, tc.rs[i].Target)
				}
				if !strings.HasPrefix(legend[i], tc.rs[i].Target+" (") {
					t.Errorf("legend %d is %q", i, legend[i])
				}
				var kinds []string
				for _, c := range s.Children {
					kinds = append(kinds, c.XMLName.Local+"."+c.attr("class"))
					if c.attr("stroke") == "" {
						t.Errorf("series %d: %s has no color", i, c.XMLName.Local)
					}
					colors[c.attr("stroke")] = true
				}
				if strings.Join(kinds, " ") != "path.histogram polyline.cdf" {
					t.Errorf("series %d holds %v", i, kinds)
				}
			}
			if len(colors) != len(tc.rs) {
				t.Errorf("%d colors for %d series", len(colors), len(tc.rs))
			}
			joined := strings.Join(texts, "|")
			for _, want := range []string{"start latency (ms), histogram", "start latency (ms), cumulative", "100%"} {
				if !strings.Contains(joined, want) {
					t.Errorf("no label %q among %q", want, joined)
				}
			}
		})
	}
}

// TestPlotLegendWraps: four targets with long legends do not fit in one
// row; the picture grows instead of cutting the last ones off.
func TestPlotLegendWraps(t *testing.T) {
	var rs []*Result
	for _, name := range []string{"troupe", "crun", "runc", "containerd"} {
		rs = append(rs, plotResult(name, latencies(1000, 20*time.Millisecond, 35*time.Second)))
	}
	var b bytes.Buffer
	if err := WritePlot(&b, rs); err != nil {
		t.Fatal(err)
	}
	var root svgNode
	if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	if h := root.attr("height"); h != strconv.Itoa(plotHeight+legendRowHeight) {
		t.Errorf("height %s, want %d (one more legend row)", h, plotHeight+legendRowHeight)
	}
	root.walk(func(n *svgNode) {
		if n.XMLName.Local == "rect" && n.attr("width") == "14" {
			if x, _ := strconv.ParseFloat(n.attr("x"), 64); x > plotWidth-plotRight-100 {
				t.Errorf("a legend entry starts at x=%v, too far right", x)
			}
		}
	})
}

func TestSavePlot(t *testing.T) {
	dir := t.TempDir()
	rs := []*Result{plotResult("troupe", latencies(100, time.Millisecond, 100*time.Millisecond))}
	svg := filepath.Join(dir, "p.svg")
	if err := SavePlot(svg, rs); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(svg); err != nil || !bytes.Contains(data, []byte("<svg")) {
		t.Errorf("%s: %v", svg, err)
	}
	for _, name := range []string{"p.png", "p.jpg", "p"} {
		if err := SavePlot(filepath.Join(dir, name), rs); err == nil {
			t.Errorf("SavePlot(%s) succeeded", name)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ raw, want float64 }{
		{0, 1}, {0.7, 1}, {1, 1}, {1.2, 2}, {2, 2}, {3, 5}, {5.01, 10}, {59, 100}, {0.013, 0.02}, {150, 200},
	}
	for _, tc := range tests {
		if got := niceStep(tc.raw); got < tc.want*(1-1e-9) || got > tc.want*(1+1e-9) {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}
