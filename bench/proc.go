package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Density is the memory a target costs beyond its containers, at the peak
// of a run: the resident (RSS) and proportional (PSS) set sizes of its
// overhead processes (troupe's daemon; containerd and its shims), summed.
// PSS divides each shared page among the processes that map it, so shims
// sharing one binary are not counted once per shim; RSS counts them fully.
type Density struct {
	// Containers is how many containers were running.
	Containers int
	// Pids are the processes measured.
	Pids []int
	// RSS and PSS are in bytes, summed over Pids.
	RSS, PSS uint64
	// IdleRSS and IdlePSS are the same sums before the run's first start,
	// when IdleKnown: the part of RSS and PSS that is not the containers'.
	// A daemon that ran containers before keeps some of that memory (Go
	// returns freed heap to the kernel slowly), so the growth over idle
	// depends less on what ran earlier than the plain division does.
	IdleRSS, IdlePSS uint64
	IdleKnown        bool
	// Threads and IdleThreads are the threads of Pids, summed, at the
	// peak and (when IdleKnown) before the first start: a runtime that
	// holds a thread per container shows it here.
	Threads, IdleThreads int
	// Note says why nothing was measured; empty when RSS and PSS are set.
	Note string
}

// Measured reports whether d holds figures; d may be nil.
func (d *Density) Measured() bool { return d != nil && d.Note == "" && d.Containers > 0 }

// RSSPerContainer is RSS divided by the running containers, in bytes; zero
// when nothing was measured (d may be nil).
func (d *Density) RSSPerContainer() float64 {
	if !d.Measured() {
		return 0
	}
	return perContainer(d, d.RSS)
}

// PSSPerContainer is PSS divided by the running containers, in bytes; zero
// when nothing was measured (d may be nil).
func (d *Density) PSSPerContainer() float64 {
	if !d.Measured() {
		return 0
	}
	return perContainer(d, d.PSS)
}

// PSSGrowthPerContainer is the PSS above the idle figure divided by the
// running containers, in bytes; zero when either is unknown. It is negative
// when the target gave memory back during the run.
func (d *Density) PSSGrowthPerContainer() float64 {
	if !d.Measured() || !d.IdleKnown {
		return 0
	}
	return (float64(d.PSS) - float64(d.IdlePSS)) / float64(d.Containers)
}

// RSSGrowthPerContainer is RSS's twin of PSSGrowthPerContainer.
func (d *Density) RSSGrowthPerContainer() float64 {
	if !d.Measured() || !d.IdleKnown {
		return 0
	}
	return (float64(d.RSS) - float64(d.IdleRSS)) / float64(d.Containers)
}

func perContainer(d *Density, v uint64) float64 {
	if !d.Measured() {
		return 0
	}
	return float64(v) / float64(d.Containers)
}

// rollup is a process's memory from /proc/PID/smaps_rollup, in bytes,
// and its threads.
type rollup struct {
	RSS, PSS uint64
	Threads  int
}

// readRollup reads the Rss and Pss lines of /proc/pid/smaps_rollup: the
// sums over every mapping, which the kernel computes in one pass (smaps
// itself would be thousands of lines for a daemon).
func readRollup(pid int) (rollup, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return rollup{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	m, err := parseRollup(data)
	if err != nil {
		return rollup{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return rollup{}, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	m.Threads = len(tasks)
	return m, nil
}

func parseRollup(data []byte) (rollup, error) {
	var m rollup
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 3 || string(f[2]) != "kB" {
			continue
		}
		var dst *uint64
		switch string(f[0]) {
		case "Rss:":
			dst = &m.RSS
		case "Pss:":
			dst = &m.PSS
		default:
			continue
		}
		kb, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return rollup{}, fmt.Errorf("smaps_rollup: %q: %w", sc.Text(), err)
		}
		*dst = kb << 10
		seen++
	}
	if seen != 2 {
		return rollup{}, fmt.Errorf("smaps_rollup: no Rss and Pss lines")
	}
	return m, nil
}

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// readCPUTime is the CPU time the machine has spent busy since boot, every
// CPU summed: user, nice, system, irq, softirq and steal (idle and iowait
// are not work; guest is already in user).
func readCPUTime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseCPUTime(data)
}

func parseCPUTime(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks uint64
	// cpu user nice system idle iowait irq softirq steal ...
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// treeCPU is the CPU time, user and system, that the processes roots and
// all their descendants have used, in procDir: each living process's own
// time plus what its reaped children used (cutime, cstime), so that every
// CPU second of the tree counts once. Unlike the machine's CPU it leaves
// out the bench client, kernel workers and whatever else the machine runs.
func treeCPU(procDir string, roots []int) (time.Duration, error) {
	type proc struct {
		ppid  int
		ticks uint64
	}
	procs := map[int]proc{}
	children := map[int][]int{}
	err := eachProcess(procDir, "stat", func(pid int, stat []byte) {
		if ppid, ticks, ok := statTimes(stat); ok {
			procs[pid] = proc{ppid, ticks}
			children[ppid] = append(children[ppid], pid)
		}
	})
	if err != nil {
		return 0, err
	}
	var ticks uint64
	seen := map[int]bool{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		p, ok := procs[pid]
		if !ok {
			if slices.Contains(roots, pid) {
				return 0, fmt.Errorf("CPU time of pid %d: not in %s", pid, procDir)
			}
			continue
		}
		ticks += p.ticks
		queue = append(queue, children[pid]...)
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// statTimes returns the parent pid and utime+stime+cutime+cstime, in
// clock ticks, from a /proc/PID/stat line: "PID (COMM) STATE PPID ..." with
// the times as fields 14 to 17 (counting from 1, COMM as one field).
func statTimes(stat []byte) (ppid int, ticks uint64, ok bool) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, 0, false
	}
	// After COMM: STATE is field 3, so field k is rest[k-3].
	rest := strings.Fields(string(stat[end+1:]))
	if len(rest) < 15 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return 0, 0, false
	}
	for _, k := range []int{14, 15, 16, 17} {
		v, err := strconv.ParseUint(rest[k-3], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		ticks += v
	}
	return ppid, ticks, true
}

// eachProcess calls fn with the pid and the content of file (such as
// "stat" or "cmdline") of every process in procDir. A process may exit
// while we look: what cannot be read is skipped.
func eachProcess(procDir, file string, fn func(pid int, data []byte)) error {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procDir, e.Name(), file))
		if err != nil {
			continue
		}
		fn(pid, data)
	}
	return nil
}
