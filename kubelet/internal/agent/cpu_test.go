package agent

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time the machine and each of its processes had
// used at one moment.
type cpuSample struct {
	busy, all time.Duration
	// procs holds each process's own CPU time and that of its children it
	// reaped, by pid and start time (a pid may be reused).
	procs map[procKey]procCPU
}

type procKey struct {
	pid   int
	start string
}

type procCPU struct {
	comm        string
	own, reaped time.Duration
}

// sampleCPU reads /proc/stat and every /proc/<pid>/stat. A process that
// exits between the two samples of a window is counted in its parent's
// reaped children, listed apart under the parent's command: the CNI
// plugins the agent runs, say, or a container's init once the engine has
// reaped it.
func sampleCPU() cpuSample {
	s := cpuSample{procs: map[procKey]procCPU{}}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		// cpu user nice system idle iowait irq softirq steal ...
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseInt(f, 10, 64)
			d := time.Duration(v) * clockTick
			s.all += d
			if i != 3 && i != 4 {
				s.busy += d
			}
		}
	}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		line := string(data)
		open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(line[end+1:])
		if len(f) < 20 {
			continue
		}
		var ticks [4]int64 // utime stime cutime cstime
		for i, x := range f[11:15] {
			ticks[i], _ = strconv.ParseInt(x, 10, 64)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(line[:open]))
		s.procs[procKey{pid, f[19]}] = procCPU{comm: line[open+1 : end],
			own: time.Duration(ticks[0]+ticks[1]) * clockTick, reaped: time.Duration(ticks[2]+ticks[3]) * clockTick}
	}
	return s
}

// cpuWindow is what was used between two samples.
type cpuWindow struct {
	busy, all time.Duration
	byComm    map[string]time.Duration
}

func (b cpuSample) until(e cpuSample) cpuWindow {
	w := cpuWindow{busy: e.busy - b.busy, all: e.all - b.all, byComm: map[string]time.Duration{}}
	for k, p := range e.procs {
		w.byComm[p.comm] += p.own - b.procs[k].own
		w.byComm[p.comm+"'s reaped"] += p.reaped - b.procs[k].reaped
	}
	return w
}

// String lists the commands that used at least 1% of the busy time,
// most first.
func (w cpuWindow) String() string {
	type row struct {
		comm string
		cpu  time.Duration
	}
	var rows []row
	for c, d := range w.byComm {
		if d*100 >= w.busy {
			rows = append(rows, row{c, d})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.cpu, a.cpu) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "machine CPU %.1f s busy of %.1f s (%.0f%%):", w.busy.Seconds(), w.all.Seconds(), 100*w.busy.Seconds()/w.all.Seconds())
	for _, r := range rows {
		fmt.Fprintf(&sb, " %s %.1f s,", r.comm, r.cpu.Seconds())
	}
	return strings.TrimSuffix(sb.String(), ",")
}
