package linux

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A failed exec can leave a stray: libcontainer's setns child is created
// inside the container's pid namespace as the daemon's child (CLONE_PARENT),
// and when the exec fails half-way (typically because the init is exiting)
// nobody waits for it. The kernel then keeps the dying init in
// zap_pid_ns_processes until that zombie is reaped, so the container never
// stops. The runtime therefore records every child it waits for, and after a
// failed exec, or when an init is slow to die, reaps the zombies among its
// children that live in a nested pid namespace and that nobody waits for.

// waiters is the set of pids the runtime's own goroutines wait for.
type waiters struct {
	mu   sync.Mutex
	pids map[int]bool
}

func newWaiters() *waiters { return &waiters{pids: make(map[int]bool)} }

func (w *waiters) add(pid int) {
	w.mu.Lock()
	w.pids[pid] = true
	w.mu.Unlock()
}

func (w *waiters) remove(pid int) {
	w.mu.Lock()
	delete(w.pids, pid)
	w.mu.Unlock()
}

func (w *waiters) has(pid int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pids[pid]
}

// strayGrace is how long a zombie must stay unclaimed before it counts as a
// stray: a process that exits the moment its exec returns is a zombie for
// the few microseconds before its waiter is registered.
const strayGrace = 100 * time.Millisecond

// reapStrays reaps zombie children of this process that are in a nested pid
// namespace and that nobody in the runtime waits for.
func (w *waiters) reapStrays() {
	first := w.strays()
	if len(first) == 0 {
		return
	}
	time.Sleep(strayGrace)
	for _, pid := range w.strays() {
		if slices.Contains(first, pid) {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// strays lists the zombie children in nested pid namespaces that are not
// waited for.
func (w *waiters) strays() []int {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || w.has(pid) {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var zombie, ours, nested bool
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "State:"):
				zombie = strings.Contains(line, "Z (zombie)")
			case strings.HasPrefix(line, "PPid:"):
				ours = strings.TrimSpace(strings.TrimPrefix(line, "PPid:")) == strconv.Itoa(self)
			case strings.HasPrefix(line, "NSpid:"):
				nested = len(strings.Fields(strings.TrimPrefix(line, "NSpid:"))) > 1
			}
		}
		if zombie && ours && nested && !w.has(pid) {
			out = append(out, pid)
		}
	}
	return out
}
