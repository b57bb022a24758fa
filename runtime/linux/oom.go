package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"golang.org/x/sys/unix"
)

// An oomWatch reports the OOM kills of one container's cgroup to the
// callbacks (OnOOM) registered with it. A container
// has at most one at a time, made on first use (or ahead, for a prepared
// container), so that however many callers listen the kernel is asked once.
//
// What is reported is the kernel's own count of OOM kills in the cgroup
// (oom_kill in memory.oom_control on cgroup v1, in memory.events on v2),
// not the notifications that wake the watch: the kernel notifies an OOM
// event also when it ends up killing nothing (its victim is already dying),
// and may notify twice for one kill. Each report takes what the count grew
// by since the last one, so a kill is reported once however many times the
// count is read: by the watch when the kernel wakes it, again a few times
// shortly after (recheck), and by the exit of a process the runtime
// started (drain) before that exit is reported.
//
// The rechecks are needed because cgroup v1 notifies before it has chosen
// and counted its victim: a watch woken at once reads the old count. The
// drain is what makes an OOM-killed init's kill come before its exit: the
// kernel counts a kill before it sends the SIGKILL ("raise event before
// sending signal"), so a count read once the victim is reaped includes it.
type oomWatch struct {
	// count reads the cgroup's OOM kill count; an error means the cgroup
	// is gone.
	count func() (uint64, error)

	// deliver is held from reading the count until every callback has
	// returned, so that a drain that takes it knows that any kill counted
	// before has been reported. last, the count reported so far, is
	// guarded by it.
	deliver sync.Mutex
	last    uint64

	mu    sync.Mutex
	fns   []func()
	ended bool // no more reports: fns dropped
	// rechecks counts recheck's chains: only the latest one goes on.
	rechecks uint64
}

// oomRechecks are when the count is read again after a wake-up, each from
// the one before: the kill is counted microseconds after the notification
// when the OOM killer has little to scan, later in a large cgroup.
var oomRechecks = [...]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// newOOMWatch reads the count once, as the baseline: kills from before are
// not reported.
func newOOMWatch(count func() (uint64, error)) (*oomWatch, error) {
	n, err := count()
	if err != nil {
		return nil, err
	}
	return &oomWatch{count: count, last: n}, nil
}

// onOOM adds a callback; on an ended watch it is dropped, never called.
func (w *oomWatch) onOOM(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.fns = append(w.fns, fn)
	}
}

// recheck reads the count again at each of oomRechecks, on timers (no
// goroutine waits); a later wake-up starts a new chain, which ends the
// older one.
func (w *oomWatch) recheck() {
	w.mu.Lock()
	w.rechecks++
	chain := w.rechecks
	w.mu.Unlock()
	w.recheckAfter(chain, 0)
}

func (w *oomWatch) recheckAfter(chain uint64, i int) {
	time.AfterFunc(oomRechecks[i], func() {
		w.mu.Lock()
		stale := w.ended || chain != w.rechecks
		w.mu.Unlock()
		if stale {
			return
		}
		w.report()
		if i+1 < len(oomRechecks) {
			w.recheckAfter(chain, i+1)
		}
	})
}

// report reads the count and reports the kills not yet reported: each
// callback once per kill.
func (w *oomWatch) report() {
	w.deliver.Lock()
	defer w.deliver.Unlock()
	n, err := w.count()
	if err != nil || n <= w.last {
		return
	}
	kills := n - w.last
	w.last = n
	w.mu.Lock()
	if w.ended {
		w.mu.Unlock()
		return
	}
	// append only ever writes beyond this length: fns needs no copy.
	fns := w.fns
	w.mu.Unlock()
	for range kills {
		for _, fn := range fns {
			fn()
		}
	}
}

// end stops the reports and drops the callbacks.
func (w *oomWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	w.fns = nil
}

func (w *oomWatch) isEnded() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

// errCgroupGone classifies the failure to read a cgroup file that no longer
// exists: the container has been deleted.
func errCgroupGone(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errclass.With(errclass.NotFound, fmt.Errorf("cgroup has been removed: %w", err))
	}
	return err
}

// readCgroupCount returns the value of key in a cgroup file of "key value" lines
// (memory.oom_control, memory.events).
func readCgroupCount(path, key string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if ok && string(k) == key {
			return strconv.ParseUint(string(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no %s count", path, key)
}

// watchOOMv1 watches the cgroup v1 memory cgroup dir on the reactor: an
// eventfd registered through cgroup.event_control wakes it on each OOM
// event, where libcontainer's own notification keeps a goroutine in a
// blocking read of it, an OS thread per container. The watch ends when the
// cgroup goes away (the kernel signals the eventfd then too) or the reactor
// closes.
func watchOOMv1(rx *reactor, dir string) (*oomWatch, error) {
	if dir == "" {
		return nil, errors.New("memory controller missing")
	}
	controlPath := filepath.Join(dir, "memory.oom_control")
	w, err := newOOMWatch(func() (uint64, error) { return readCgroupCount(controlPath, "oom_kill") })
	if err != nil {
		return nil, errCgroupGone(err)
	}
	oomControl, err := unix.Open(controlPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errCgroupGone(fmt.Errorf("open memory.oom_control: %w", err))
	}
	// The kernel only needs the control file while the event is registered.
	defer unix.Close(oomControl)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	eventControl := filepath.Join(dir, "cgroup.event_control")
	if err := os.WriteFile(eventControl, fmt.Appendf(nil, "%d %d", efd, oomControl), 0o700); err != nil {
		unix.Close(efd)
		return nil, errCgroupGone(fmt.Errorf("register for OOM events: %w", err))
	}
	ready := func(uint32) bool {
		var count [8]byte
		_, err := unix.Read(efd, count[:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return true
		case err != nil:
			return false
		}
		// The kernel signals the eventfd as well when the cgroup is
		// removed: that is the end, not an OOM kill.
		if _, err := os.Lstat(eventControl); errors.Is(err, os.ErrNotExist) {
			return false
		}
		w.report()
		w.recheck()
		return true
	}
	release := func() {
		unix.Close(efd)
		w.end()
	}
	if _, err := rx.add(efd, unix.EPOLLIN, ready, release); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("watch OOM events: %w", err)
	}
	return w, nil
}

// watchOOMv2 watches the cgroup v2 dir on the reactor, as libcontainer's
// notification does from a goroutine of its own (an OS thread per
// container): an inotify descriptor wakes it when memory.events changes,
// and when cgroup.events does, which is how the end shows: no IN_DELETE
// comes from a cgroup file, so the watch ends once the cgroup has no
// process left (populated 0), as libcontainer's does. A watch made for an
// empty cgroup is ended from the start: no kill can come. cgroup v2 counts
// a kill before it notifies, so it needs no recheck. This project's test
// machines are cgroup v1: only the mechanics are tested, on plain files
// (TestOOMWatchV2Files).
func watchOOMv2(rx *reactor, dir string) (*oomWatch, error) {
	if dir == "" {
		return nil, errors.New("unified cgroup missing")
	}
	eventsPath := filepath.Join(dir, "memory.events")
	cgEventsPath := filepath.Join(dir, "cgroup.events")
	w, err := newOOMWatch(func() (uint64, error) { return readCgroupCount(eventsPath, "oom_kill") })
	if err != nil {
		return nil, errCgroupGone(err)
	}
	populated := func() bool {
		n, err := readCgroupCount(cgEventsPath, "populated")
		return err == nil && n != 0
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	for _, path := range []string{eventsPath, cgEventsPath} {
		if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, errCgroupGone(fmt.Errorf("watch %s: %w", filepath.Base(path), err))
		}
	}
	// Checked once the watches are in place: an exit after this wakes it.
	if !populated() {
		unix.Close(fd)
		w.end()
		return w, nil
	}
	ready := func(uint32) bool {
		// Which file changed does not matter: both are read again.
	drain:
		for {
			n, err := unix.Read(fd, rx.buf)
			switch {
			case err == unix.EINTR || err == nil && n > 0:
			case err == unix.EAGAIN:
				break drain
			default:
				return false
			}
		}
		w.report()
		return populated()
	}
	release := func() {
		unix.Close(fd)
		w.end()
	}
	if _, err := rx.add(fd, unix.EPOLLIN, ready, release); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch OOM events: %w", err)
	}
	return w, nil
}
