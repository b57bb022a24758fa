package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// The files of the state directory. Everything kube-up starts keeps its
// data below the directory, so that removing it removes all of it.
const (
	// lockFile is held (flock) by the supervisor for as long as it runs:
	// a lock that can be taken means no supervisor.
	lockFile = "supervisor.lock"
	// pidFile is the supervisor's "PID STARTTIME", what down signals.
	pidFile = "supervisor.pid"
	// childrenFile lists the supervisor's children, "PID STARTTIME NAME"
	// a line, for a down after the supervisor died without cleaning up.
	childrenFile = "children"
	// configFile is the configuration the supervisor runs with.
	configFile = "config.json"
	// readyFile appears once the node is Ready; it holds the kubeconfig's
	// path.
	readyFile = "ready"
	// failedFile holds why the supervisor gave up, for up to tell.
	failedFile = "failed"
	// logFile is the supervisor's own log; the others are in logs/.
	logFile = "supervisor.log"
	// kubeconfigFile is the admin's kubeconfig, at a fixed path.
	kubeconfigFile = "kubeconfig"
)

// config is what an up asks for. It is written to the state directory,
// so that down needs only the directory.
type config struct {
	Dir          string `json:"dir"`
	Troupe       string `json:"troupe"`
	Registry     string `json:"registry"`
	NodeName     string `json:"nodeName"`
	PodCIDR      string `json:"podCIDR"`
	Bridge       string `json:"bridge"`
	CgroupParent string `json:"cgroupParent"`
}

func (c config) path(name string) string { return filepath.Join(c.Dir, name) }

// image is the busybox image kube-up's registry serves.
func (c config) image() string { return c.Registry + "/busybox:1" }

func readConfig(dir string) (config, error) {
	var c config
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	return c, nil
}

func writeConfig(c config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(c.path(configFile), append(data, '\n'))
}

// writeFileAtomic writes path by renaming a complete file over it: a
// reader never sees half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// proc is one process, named by its pid and start time: the pair never
// names another process, even once the pid is reused.
type proc struct {
	PID   int
	Start uint64
	Name  string
}

func (p proc) String() string { return fmt.Sprintf("%d %d %s", p.PID, p.Start, p.Name) }

// alive reports whether p still runs (a zombie does not).
func (p proc) alive() bool {
	start, ok := linuxtest.StartTime(p.PID)
	return ok && start == p.Start
}

// signal sends sig to p if p is still the process it names.
func (p proc) signal(sig unix.Signal) error {
	if !p.alive() {
		return nil
	}
	return unix.Kill(p.PID, sig)
}

func self(name string) (proc, error) {
	pid := os.Getpid()
	start, ok := linuxtest.StartTime(pid)
	if !ok {
		return proc{}, errors.New("no start time of this process")
	}
	return proc{PID: pid, Start: start, Name: name}, nil
}

// readProcs parses a file of "PID STARTTIME [NAME]" lines; a missing file
// is none.
func readProcs(path string) ([]proc, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []proc
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		start, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		p := proc{PID: pid, Start: start}
		if len(f) > 2 {
			p.Name = f[2]
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func writeProcs(path string, ps []proc) error {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintln(&b, p)
	}
	return writeFileAtomic(path, []byte(b.String()))
}

// children returns the live processes whose parent is pid.
func children(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	var ps []proc
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// after its last ')' are "state ppid ...".
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		start, ok := linuxtest.StartTime(child)
		if !ok {
			continue
		}
		name := s[strings.IndexByte(s, '(')+1 : i]
		ps = append(ps, proc{PID: child, Start: start, Name: name})
	}
	return ps
}

// lock takes the state directory's lock without waiting: ok is false when
// another process holds it (a supervisor runs). The lock lasts as long as
// f is open.
func lock(dir string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, true, nil
}
