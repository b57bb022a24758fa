package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// labelWidth is the width of the label column, colon included, as in the
// reference's table: values start in the fifteenth column.
const labelWidth = 14

// columnGap separates the columns of the comparison table.
const columnGap = 3

// tableRow is one line of a table: a label and a value per target.
type tableRow struct {
	label  string
	values []string
}

// latencyRows are the reference's rows, in its order.
func latencyRows(rs []*Result) []tableRow {
	rows := []tableRow{{label: "count"}}
	for _, r := range rs {
		rows[0].values = append(rows[0].values, strconv.Itoa(r.Summary.Count))
	}
	fields := []struct {
		label string
		get   func(Summary) time.Duration
	}{
		{"min", func(s Summary) time.Duration { return s.Min }},
		{"max", func(s Summary) time.Duration { return s.Max }},
		{"mean", func(s Summary) time.Duration { return s.Mean }},
		{"stddev", func(s Summary) time.Duration { return s.Stddev }},
		{"median", func(s Summary) time.Duration { return s.Median }},
		{"75%", func(s Summary) time.Duration { return s.P75 }},
		{"95%", func(s Summary) time.Duration { return s.P95 }},
		{"99%", func(s Summary) time.Duration { return s.P99 }},
		{"99.9%", func(s Summary) time.Duration { return s.P999 }},
	}
	for _, f := range fields {
		rw := tableRow{label: f.label}
		for _, r := range rs {
			v := "-"
			if r.Summary.Count > 0 {
				v = wholeMs(f.get(r.Summary))
			}
			rw.values = append(rw.values, v)
		}
		rows = append(rows, rw)
	}
	return rows
}

// WriteReport writes the report of one run: a heading, the reference's
// table (count, min, max, mean, stddev, median, 75%, 95%, 99%, 99.9%, in
// whole milliseconds), then containers/s, the wall time, the machine's CPU
// per start, failures with the first errors, the teardown time and, if
// measured, the memory per running container.
func WriteReport(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString(reportHeading(r) + "\n")
	for _, rw := range latencyRows([]*Result{r}) {
		reportLine(&b, rw.label, rw.values[0])
	}
	reportLine(&b, "containers/s", perSecond(r))
	reportLine(&b, "wall", fmtSeconds(r.Wall))
	reportLine(&b, "cpu/start", cpuPerStart(r))
	if r.ProcCPU > 0 {
		reportLine(&b, "proc cpu", procCPUPerStart(r))
	}
	failures := strconv.Itoa(r.Failures)
	if r.Failures > 0 {
		failures += fmt.Sprintf(" of %d", r.Attempted)
	}
	reportLine(&b, "failures", failures)
	writeErrors(&b, r, "  ")
	reportLine(&b, "teardown", teardownCell(r))
	if d := r.Density; d != nil {
		if !d.Measured() {
			reportLine(&b, "density", "not measured: "+d.Note)
		} else {
			detail := fmt.Sprintf(" (%d running; pids %s)", d.Containers, joinInts(d.Pids))
			reportLine(&b, "rss/running", fmtMiB(d.RSSPerContainer())+detail)
			reportLine(&b, "pss/running", fmtMiB(d.PSSPerContainer()))
			if d.IdleKnown {
				reportLine(&b, "pss growth", fmt.Sprintf("%s per running container over the idle %s",
					fmtMiB(d.PSSGrowthPerContainer()), fmtMiB(float64(d.IdlePSS))))
			}
			threads := strconv.Itoa(d.Threads)
			if d.IdleKnown {
				threads += fmt.Sprintf(" (idle: %d)", d.IdleThreads)
			}
			reportLine(&b, "threads", threads)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteComparison writes one table with a column per result: the rows of
// WriteReport, then a block of ratios to troupe's result (or the first
// result if troupe's is not among them): each column's figure divided by
// troupe's, so above 1.00x is more containers/s, and more latency, CPU,
// teardown time or memory. Failures' first errors follow the table.
func WriteComparison(w io.Writer, rs []*Result) error {
	if len(rs) == 0 {
		return nil
	}
	base := baseResult(rs)
	rows := []tableRow{{label: "", values: targetNames(rs)}}
	rows = append(rows, latencyRows(rs)...)
	extra := []struct {
		label string
		get   func(*Result) string
	}{
		{"containers/s", perSecond},
		{"wall", func(r *Result) string { return fmtSeconds(r.Wall) }},
		{"cpu/start", cpuPerStart},
		{"proc cpu", procCPUPerStart},
		{"failures", func(r *Result) string { return strconv.Itoa(r.Failures) }},
		{"teardown", func(r *Result) string { return fmtSeconds(r.Teardown) }},
		{"rss/running", func(r *Result) string { return densityCell(r, (*Density).RSSPerContainer) }},
		{"pss/running", func(r *Result) string { return densityCell(r, (*Density).PSSPerContainer) }},
		{"pss growth", func(r *Result) string {
			if !r.Density.Measured() || !r.Density.IdleKnown {
				return "-"
			}
			return fmtMiB(r.Density.PSSGrowthPerContainer())
		}},
	}
	anyProcCPU := slices.ContainsFunc(rs, func(r *Result) bool { return r.ProcCPU > 0 })
	for _, e := range extra {
		if e.label == "proc cpu" && !anyProcCPU {
			continue
		}
		rw := tableRow{label: e.label}
		for _, r := range rs {
			rw.values = append(rw.values, e.get(r))
		}
		rows = append(rows, rw)
	}
	rows = append(rows, tableRow{}, tableRow{label: "vs " + base.Target})
	ratios := []struct {
		label string
		get   func(*Result) float64
	}{
		{"containers/s", func(r *Result) float64 { return r.PerSecond }},
		{"median", func(r *Result) float64 { return float64(r.Summary.Median) }},
		{"99%", func(r *Result) float64 { return float64(r.Summary.P99) }},
		{"cpu/start", func(r *Result) float64 { return float64(r.CPUPerStart()) }},
		{"teardown", func(r *Result) float64 { return float64(r.Teardown) }},
		{"pss/running", func(r *Result) float64 { return r.Density.PSSPerContainer() }},
	}
	for _, q := range ratios {
		rw := tableRow{label: q.label}
		for _, r := range rs {
			rw.values = append(rw.values, fmtRatio(q.get(r), q.get(base)))
		}
		rows = append(rows, rw)
	}

	widths := make([]int, len(rs))
	for _, rw := range rows {
		for i, v := range rw.values {
			widths[i] = max(widths[i], len(v)+columnGap)
		}
	}
	var b strings.Builder
	for _, rw := range rows {
		var l strings.Builder
		if rw.label != "" {
			fmt.Fprintf(&l, "%-*s", labelWidth, rw.label+":")
		} else {
			l.WriteString(strings.Repeat(" ", labelWidth))
		}
		for i, v := range rw.values {
			fmt.Fprintf(&l, "%-*s", widths[i], v)
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	for _, r := range rs {
		if r.Failures == 0 && r.TeardownErr == nil {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %d of %d starts failed\n", r.Target, r.Failures, r.Attempted)
		writeErrors(&b, r, "  ")
		if r.TeardownErr != nil {
			fmt.Fprintf(&b, "  teardown: %v\n", r.TeardownErr)
		}
	}
	sep := "\n"
	for _, r := range rs {
		if r.Density != nil && !r.Density.Measured() {
			fmt.Fprintf(&b, "%s%s: density not measured: %s\n", sep, r.Target, r.Density.Note)
			sep = ""
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func baseResult(rs []*Result) *Result {
	for _, r := range rs {
		if r.Target == "troupe" {
			return r
		}
	}
	return rs[0]
}

func targetNames(rs []*Result) []string {
	var ns []string
	for _, r := range rs {
		ns = append(ns, r.Target)
	}
	return ns
}

func reportHeading(r *Result) string {
	starts := fmt.Sprintf("%d starts", r.N)
	if r.Attempted < r.N {
		starts = fmt.Sprintf("%d of %d starts (interrupted)", r.Attempted, r.N)
	}
	if r.Concurrency >= r.N {
		return fmt.Sprintf("%s: %s, all at once", r.Target, starts)
	}
	return fmt.Sprintf("%s: %s, %d at a time", r.Target, starts, r.Concurrency)
}

func reportLine(b *strings.Builder, label, value string) {
	fmt.Fprintf(b, "%-*s%s\n", labelWidth, label+":", value)
}

func writeErrors(b *strings.Builder, r *Result, indent string) {
	for _, e := range r.Errors {
		fmt.Fprintf(b, "%s%s\n", indent, e.Error())
	}
	if hidden := r.Failures - len(r.Errors); hidden > 0 {
		fmt.Fprintf(b, "%s(and %d more)\n", indent, hidden)
	}
}

// wholeMs is d in whole milliseconds, rounded, as the reference prints it;
// below 10 ms with a tenth, or warm starts would all read 0ms or 1ms.
func wholeMs(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
}

func fmtSeconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func perSecond(r *Result) string { return fmt.Sprintf("%.1f", r.PerSecond) }

func cpuPerStart(r *Result) string {
	if r.CPU == 0 || r.Summary.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(r.CPUPerStart())/float64(time.Millisecond))
}

// procCPUPerStart is the CPU per start of the target's own processes
// (ProcCPU), or "-".
func procCPUPerStart(r *Result) string {
	if r.ProcCPU == 0 || r.Summary.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(r.ProcCPUPerStart())/float64(time.Millisecond))
}

func teardownCell(r *Result) string {
	s := fmtSeconds(r.Teardown)
	if r.TeardownErr != nil {
		s += " (" + r.TeardownErr.Error() + ")"
	}
	return s
}

// fmtMiB writes a memory figure in MiB, or in KiB below 1 MiB: the goal of
// the project is counted in KiB per container.
func fmtMiB(bytes float64) string {
	if math.Abs(bytes) < 1<<20 {
		v := bytes / (1 << 10)
		if math.Abs(v) < 0.5 {
			v = 0 // no "-0 KiB" for a growth that rounds to nothing
		}
		return fmt.Sprintf("%.0f KiB", v)
	}
	return fmt.Sprintf("%.2f MiB", bytes/(1<<20))
}

func densityCell(r *Result, per func(*Density) float64) string {
	if !r.Density.Measured() {
		return "-"
	}
	return fmtMiB(per(r.Density))
}

func fmtRatio(v, base float64) string {
	if v == 0 || base == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/base)
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// JSONReport is the document of `troupe bench --json`: one entry per
// target, in the order they ran. Its field names are stable; programs may
// rely on them.
type JSONReport struct {
	Results []JSONResult `json:"results"`
}

// JSONResult is one Result in JSON: durations as float milliseconds (names
// ending in Ms), counts as integers.
type JSONResult struct {
	Target      string `json:"target"`
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
	Attempted   int    `json:"attempted"`
	// Count is the successful starts, which the latency figures describe.
	Count    int         `json:"count"`
	Failures int         `json:"failures"`
	Errors   []JSONError `json:"errors"`

	MinMs    float64 `json:"minMs"`
	MaxMs    float64 `json:"maxMs"`
	MeanMs   float64 `json:"meanMs"`
	StddevMs float64 `json:"stddevMs"`
	MedianMs float64 `json:"medianMs"`
	P75Ms    float64 `json:"p75Ms"`
	P95Ms    float64 `json:"p95Ms"`
	P99Ms    float64 `json:"p99Ms"`
	P999Ms   float64 `json:"p999Ms"`

	WallMs              float64 `json:"wallMs"`
	ContainersPerSecond float64 `json:"containersPerSecond"`
	// CPUMs is the machine's busy CPU time during the starts; CPUPerStartMs
	// that divided by Count. Both 0 when unknown.
	CPUMs         float64 `json:"cpuMs"`
	CPUPerStartMs float64 `json:"cpuPerStartMs"`
	// ProcCPUPerStartMs is the CPU per start of the target's own processes
	// and their descendants (no bench client, no kernel workers); 0 when
	// the target names no processes.
	ProcCPUPerStartMs float64 `json:"procCpuPerStartMs"`

	TeardownMs    float64 `json:"teardownMs"`
	TeardownError string  `json:"teardownError,omitempty"`

	Density *JSONDensity `json:"density,omitempty"`
	// Runs are each run's figures when the result is the median of several.
	Runs []RunFigures `json:"runs,omitempty"`
}

// JSONError is one failed start.
type JSONError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// JSONDensity is a Density in JSON, memory in bytes.
type JSONDensity struct {
	Containers           int     `json:"containers"`
	Pids                 []int   `json:"pids"`
	RSSBytes             uint64  `json:"rssBytes"`
	PSSBytes             uint64  `json:"pssBytes"`
	RSSPerContainerBytes float64 `json:"rssPerContainerBytes"`
	PSSPerContainerBytes float64 `json:"pssPerContainerBytes"`
	// The idle figures are present only when known.
	IdleRSSBytes               *uint64  `json:"idleRssBytes,omitempty"`
	IdlePSSBytes               *uint64  `json:"idlePssBytes,omitempty"`
	RSSGrowthPerContainerBytes *float64 `json:"rssGrowthPerContainerBytes,omitempty"`
	PSSGrowthPerContainerBytes *float64 `json:"pssGrowthPerContainerBytes,omitempty"`
	// Threads are the threads of Pids at the peak; IdleThreads before the
	// first start, present only when known.
	Threads     int  `json:"threads"`
	IdleThreads *int `json:"idleThreads,omitempty"`
	// Note says why nothing was measured.
	Note string `json:"note,omitempty"`
}

// NewJSONReport converts results to the JSON document.
func NewJSONReport(rs []*Result) JSONReport {
	doc := JSONReport{Results: []JSONResult{}}
	for _, r := range rs {
		s := r.Summary
		j := JSONResult{
			Target: r.Target, N: r.N, Concurrency: r.Concurrency, Attempted: r.Attempted,
			Count: s.Count, Failures: r.Failures, Errors: []JSONError{},
			MinMs: millis(s.Min), MaxMs: millis(s.Max), MeanMs: millis(s.Mean), StddevMs: millis(s.Stddev),
			MedianMs: millis(s.Median), P75Ms: millis(s.P75), P95Ms: millis(s.P95), P99Ms: millis(s.P99), P999Ms: millis(s.P999),
			WallMs: millis(r.Wall), ContainersPerSecond: r.PerSecond,
			CPUMs: millis(r.CPU), CPUPerStartMs: millis(r.CPUPerStart()), ProcCPUPerStartMs: millis(r.ProcCPUPerStart()),
			TeardownMs: millis(r.Teardown), Runs: r.Runs,
		}
		for _, e := range r.Errors {
			j.Errors = append(j.Errors, JSONError{ID: e.ID, Error: e.Err.Error()})
		}
		if r.TeardownErr != nil {
			j.TeardownError = r.TeardownErr.Error()
		}
		if d := r.Density; d != nil {
			j.Density = &JSONDensity{
				Containers: d.Containers, Pids: d.Pids, RSSBytes: d.RSS, PSSBytes: d.PSS,
				RSSPerContainerBytes: d.RSSPerContainer(), PSSPerContainerBytes: d.PSSPerContainer(),
				Threads: d.Threads, Note: d.Note,
			}
			if d.Measured() && d.IdleKnown {
				rg, pg := d.RSSGrowthPerContainer(), d.PSSGrowthPerContainer()
				j.Density.IdleRSSBytes, j.Density.IdlePSSBytes = &d.IdleRSS, &d.IdlePSS
				j.Density.RSSGrowthPerContainerBytes, j.Density.PSSGrowthPerContainerBytes = &rg, &pg
				j.Density.IdleThreads = &d.IdleThreads
			}
		}
		doc.Results = append(doc.Results, j)
	}
	return doc
}

// WriteJSON writes the JSON document of rs, indented.
func WriteJSON(w io.Writer, rs []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewJSONReport(rs))
}

// msf is d in milliseconds, as a float.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
