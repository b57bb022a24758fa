// Package procstat reads what the runtime needs of /proc/<pid>/stat: a
// process's state and when it started, which together tell a live process
// from a zombie and from a later process that got the same pid; whether it
// is exiting; and, for benchmarks, its command and the CPU it used.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is the part of /proc/<pid>/stat the runtime uses.
type Stat struct {
	// State is the one-letter state: R, S, D, Z (zombie), X (dead)...
	State byte
	// StartTicks is when the process started, in clock ticks since boot.
	StartTicks uint64
	// Comm is the command's name, as the kernel keeps it (15 bytes).
	Comm string
	// CPUTicks is the CPU time the process used (user and system), and
	// ReapedTicks that of its children it waited for, in clock ticks.
	CPUTicks, ReapedTicks uint64
	// Flags are the kernel's per-task flags (PF_*).
	Flags uint64
}

// pfExiting is the kernel's PF_EXITING: the task has begun to exit.
const pfExiting = 0x4

// Gone reports whether the process has exited: a zombie or dead one.
func (s Stat) Gone() bool { return s.State == 'Z' || s.State == 'X' }

// Exiting reports whether the task has begun to exit. Such a task may still
// wait a long time before it is a zombie: a pid namespace's init, for one,
// until every other process of its namespace is gone.
func (s Stat) Exiting() bool { return s.Flags&pfExiting != 0 }

// Read reads /proc/<pid>/stat: the process's main thread.
func Read(pid int) (Stat, error) {
	return read("/proc/" + strconv.Itoa(pid) + "/stat")
}

// ReadTask reads /proc/<pid>/task/<tid>/stat: one thread of the process.
func ReadTask(pid, tid int) (Stat, error) {
	return read("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat")
}

func read(path string) (Stat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	return parse(string(data))
}

func parse(line string) (Stat, error) {
	// The command, in parentheses, may hold spaces and parentheses itself:
	// the fields that follow start after the last ')'. From the state on,
	// the start time is the 20th of them (the line's 22nd).
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("proc stat %q: no command", line)
	}
	fields := strings.Fields(line[end+1:])
	if len(fields) < 20 || len(fields[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat %q: too few fields", line)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat %q: start time: %w", line, err)
	}
	// utime, stime, cutime and cstime are the 12th to 15th fields from
	// the state on.
	var ticks [4]uint64
	for i, f := range fields[11:15] {
		if ticks[i], err = strconv.ParseUint(f, 10, 64); err != nil {
			return Stat{}, fmt.Errorf("proc stat %q: CPU times: %w", line, err)
		}
	}
	// The flags are the 7th field from the state on.
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat %q: flags: %w", line, err)
	}
	return Stat{State: fields[0][0], StartTicks: start, Comm: line[open+1 : end],
		CPUTicks: ticks[0] + ticks[1], ReapedTicks: ticks[2] + ticks[3], Flags: flags}, nil
}
