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

	"github.com/troupe-run/troupe/runtime/procstat"
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
	start uint64
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
	paths, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range paths {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		st, err := procstat.Read(pid) // gone since the glob: not counted
		if err != nil {
			continue
		}
		s.procs[procKey{pid, st.StartTicks}] = procCPU{comm: st.Comm,
			own: time.Duration(st.CPUTicks) * clockTick, reaped: time.Duration(st.ReapedTicks) * clockTick}
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
