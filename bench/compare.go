package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
)

// The reference runtimes troupe is compared with are driven through the
// command lines of their Debian 12 packages — crun 1.8.1, runc 1.1.5 and
// containerd 1.6.20 with ctr — exactly as a user or a script would drive
// them: one process per start, each timed from fork to exit. What they have
// in common lives here: finding the runtime (installing it is the job of
// make bench-deps, never of the benchmark), writing each container's
// config.json, running a command with its stderr in the error, and removing
// the cgroups a run made.
//
// Per-container config. Every container gets its own cgroup,
// /troupe-bench-<target>/<id>: an absolute path of our own, because runc
// without a cgroupsPath nests the container under the caller's cgroup, and
// because a parent of our own makes the cleanup certain (the teardown
// removes that parent in every hierarchy). The cgroup path is part of the
// spec, so each container needs its own config.json; it references the
// shared read-only rootfs by absolute path in root.path. Ids are not known
// before Start, so Start writes that file (3 KB in a directory of its own:
// 0.1–0.35 ms here, see BenchmarkCLIConfigWrite, against 9–85 ms of CPU per
// start) before it runs the CLI — which is what a user of the CLI has to do
// as well.

var (
	_ Target = (*ociCLI)(nil)
	_ Target = (*crunTarget)(nil)
	_ Target = (*containerdTarget)(nil)
)

// CompareTargetNames returns the names NewCompareTarget accepts.
func CompareTargetNames() []string { return []string{"crun", "runc", "containerd"} }

// NewCompareTarget returns the reference runtime named name ("crun", "runc"
// or "containerd") as a benchmark target. It installs nothing: when the
// runtime is missing, its Setup fails with an error naming the Debian
// package and the command that installs it (make bench-deps).
func NewCompareTarget(name string) (Target, error) {
	switch name {
	case "crun":
		return newCrun(), nil
	case "runc":
		return newRunc(), nil
	case "containerd":
		return newContainerd(), nil
	}
	return nil, fmt.Errorf("compare target %q: %w: the valid ones are %s",
		name, errclass.InvalidArgument, strings.Join(CompareTargetNames(), ", "))
}

// cliTeardownConcurrency is how many per-container teardown commands the
// CLI targets run at once: each is a process that mostly waits for a kill
// to land, so a few more than the cores keep them busy; a thousand would
// only fight over them (and over pid_max).
const cliTeardownConcurrency = 16

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the cgroup, in every hierarchy, under which target puts
// its containers.
func cgroupParent(target string) string { return "/troupe-bench-" + target }

// checkCLIID checks an id as troupe checks its own: ids become file and
// cgroup names and command-line arguments, so no "/", no "..", no leading
// "-" that a CLI would read as a flag.
func checkCLIID(id string) error {
	return runtime.ValidID("container id", id)
}

// lookCommand finds command on PATH or, as Debian puts runc in /usr/sbin
// and a user's PATH may lack it, in the standard directories.
func lookCommand(command string) (string, error) {
	if p, err := exec.LookPath(command); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, command)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", command, exec.ErrNotFound)
}

// requireCommand returns the path of command, which Debian package pkg
// provides. The benchmark installs nothing: when command is missing, the
// error says which package has it and how to install that.
func requireCommand(command, pkg string) (string, error) {
	if p, err := lookCommand(command); err == nil {
		return p, nil
	}
	return "", missingCommandError(command, pkg)
}

// missingCommandError is requireCommand's error for a missing command:
// make bench-deps installs the comparison runtimes' packages, and
// hack/install-compare.sh (which it runs) any Debian package it is given.
func missingCommandError(command, pkg string) error {
	how := fmt.Sprintf("sudo hack/install-compare.sh %s", pkg)
	if slices.Contains(comparePackages, pkg) {
		how = "sudo make bench-deps, or " + how
	}
	return fmt.Errorf("%s is not installed: %w: it comes with the Debian package %s; install it with: %s (the benchmark installs nothing itself)",
		command, errclass.Unavailable, pkg, how)
}

// comparePackages are the Debian packages of the comparison runtimes, the
// ones hack/install-compare.sh (make bench-deps) installs by default.
var comparePackages = []string{"crun", "runc", "containerd"}

// cliEnv is the environment of the commands the targets run: the process's
// own, with a PATH that surely holds /usr/sbin (runc), which containerd and
// its shims look up by name.
func cliEnv() []string {
	env := os.Environ()
	path := os.Getenv("PATH")
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !slices.Contains(filepath.SplitList(path), dir) {
			path += string(filepath.ListSeparator) + dir
		}
	}
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	return append(env, "PATH="+strings.TrimPrefix(path, ":"))
}

// maxStderr bounds how much of a command's output an error carries.
const maxStderr = 2048

// runCLI runs argv and returns an error naming the command and carrying
// its output when it fails. Output goes to out when out is not nil: a
// command whose children outlive it (runc run -d passes its stdio to the
// container) needs a file there, or waiting for it would wait for the
// container. With a nil out, stdout and stderr are collected in memory.
func runCLI(ctx context.Context, out *os.File, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = cliEnv()
	var buf bytes.Buffer
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	} else {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := buf.Bytes()
	if out != nil {
		msg = readTail(out.Name(), maxStderr)
	}
	return cliError(argv, err, msg)
}

// outputCLI runs argv and returns its stdout; an error carries its stderr.
func outputCLI(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = cliEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", cliError(argv, err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// cliError is the error of a failed command: the command, how it failed and
// the end of what it printed.
func cliError(argv []string, err error, output []byte) error {
	if errors.Is(err, syscall.EAGAIN) {
		// A fork that hit pid_max or the thread limit: say so, as the
		// message alone ("resource temporarily unavailable") hides it.
		err = fmt.Errorf("%w (pid_max or the thread limit reached?)", err)
	}
	text := strings.TrimSpace(string(output))
	if len(text) > maxStderr {
		text = "…" + text[len(text)-maxStderr:]
	}
	if text == "" {
		return fmt.Errorf("%s: %w", shortCommand(argv), err)
	}
	return fmt.Errorf("%s: %w: %s", shortCommand(argv), err, text)
}

// shortCommand names a command in an error: the binary's base name and the
// arguments.
func shortCommand(argv []string) string {
	return filepath.Base(argv[0]) + " " + strings.Join(argv[1:], " ")
}

// readTail returns the last n bytes of the file at path, or nothing.
func readTail(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return b
}

// cliConfig writes each container's config.json from the shared bundle's
// spec: the same spec with the container's own cgroup path and, where the
// runtime insists, another ociVersion.
type cliConfig struct {
	// spec is the shared bundle's spec, with root.path absolute. Never
	// modified after loading, as Starts read it concurrently.
	spec *specs.Spec
	// cgroupParent is the parent of every container's cgroup.
	cgroupParent string
	// ociVersion, if set, replaces the spec's ociVersion.
	ociVersion string
}

// loadCLIConfig loads the bundle at path for containers under cgroupParent.
func loadCLIConfig(path, cgroupParent, ociVersion string) (*cliConfig, error) {
	b, err := bundle.Load(path)
	if err != nil {
		return nil, err
	}
	return &cliConfig{spec: b.Spec, cgroupParent: cgroupParent, ociVersion: ociVersion}, nil
}

// cgroupsPath is the cgroup of container id.
func (c *cliConfig) cgroupsPath(id string) string { return c.cgroupParent + "/" + id }

// marshal returns the config.json of container id. It copies the two
// structs it changes, so concurrent calls share the rest read-only.
func (c *cliConfig) marshal(id string) ([]byte, error) {
	s := *c.spec
	linux := *s.Linux
	linux.CgroupsPath = c.cgroupsPath(id)
	s.Linux = &linux
	if c.ociVersion != "" {
		s.Version = c.ociVersion
	}
	return json.Marshal(&s)
}

// write writes the bundle of container id at dir/id (a config.json only;
// root.path points at the shared rootfs) and returns its directory.
func (c *cliConfig) write(dir, id string) (string, error) {
	data, err := c.marshal(id)
	if err != nil {
		return "", fmt.Errorf("config of container %q: %w", id, err)
	}
	b := filepath.Join(dir, id)
	if err := os.Mkdir(b, 0o700); err != nil {
		return "", fmt.Errorf("bundle of container %q: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(b, bundle.ConfigFile), data, 0o600); err != nil {
		return "", fmt.Errorf("bundle of container %q: %w", id, err)
	}
	return b, nil
}

// idSet is the ids a target was asked to start, kept so that the teardown
// reaches every container, including one whose start failed half-way.
type idSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add records id and reports whether it was new.
func (s *idSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[string]struct{})
	}
	if _, ok := s.ids[id]; ok {
		return false
	}
	s.ids[id] = struct{}{}
	return true
}

// take returns the ids, with extra ones merged in, sorted, and forgets them.
func (s *idSet) take(extra ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]string, 0, len(s.ids)+len(extra))
	for id := range s.ids {
		all = append(all, id)
	}
	s.ids = nil
	all = append(all, extra...)
	slices.Sort(all)
	return slices.Compact(all)
}

// forEachBounded calls fn for every id, at most limit at a time, and joins
// the errors.
func forEachBounded(ids []string, limit int, fn func(id string) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, max(limit, 1))
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// firstErrors joins at most n of errs and says how many more there were,
// so that a teardown of a thousand containers failing the same way reports
// it readably.
func firstErrors(errs []error, n int) error {
	if len(errs) <= n {
		return errors.Join(errs...)
	}
	return errors.Join(append(slices.Clone(errs[:n]), fmt.Errorf("and %d more errors", len(errs)-n))...)
}

// splitJoined undoes errors.Join, for firstErrors.
func splitJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// cgroupRemoveTimeout bounds how long removing a cgroup waits for its
// killed processes to leave it.
const cgroupRemoveTimeout = 10 * time.Second

// removeCgroupTree removes the cgroup parent (e.g. "/troupe-bench-runc")
// and everything below it in every hierarchy mounted under root: the v1
// hierarchies root/<controller>/parent, the cgroup2 one of a hybrid host
// root/unified/parent, and root/parent on a pure cgroup2 host. A cgroup
// whose processes are still dying (EBUSY) is retried for a while. Missing
// directories are not an error.
func removeCgroupTree(ctx context.Context, root, parent string) error {
	dirs := []string{filepath.Join(root, parent)}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroups: %w", err)
	}
	for _, e := range entries {
		// A symlinked hierarchy (cpu -> cpu,cpuacct) is also there under
		// its real name.
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name(), parent))
		}
	}
	deadline := time.Now().Add(cgroupRemoveTimeout)
	var errs []error
	for _, d := range dirs {
		if err := removeCgroupDir(ctx, d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killCgroupLeftovers kills, with SIGKILL, every process still in a cgroup
// at or below parent in any hierarchy under root, and returns an error
// naming them if there were any. The deletes should have left none; a
// process there now is a container whose delete failed (or whose shim was
// lost), and it is ours: it sits in the target's own cgroup parent, which
// is why the parent is a dedicated one.
func killCgroupLeftovers(root, parent string) error {
	dirs := []string{filepath.Join(root, parent)}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(root, e.Name(), parent))
			}
		}
	}
	seen := make(map[int]bool)
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(data)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	if len(seen) == 0 {
		return nil
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return fmt.Errorf("killed %d processes left in cgroup %s after the deletes: %v", len(pids), parent, pids)
}

// removeCgroupDir removes the cgroup dir and its descendants, children
// first (cgroup directories can only be rmdir'ed, and only when empty of
// children and processes).
func removeCgroupDir(ctx context.Context, dir string, deadline time.Time) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupDir(ctx, filepath.Join(dir, e.Name()), deadline); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove cgroup %s: %w", dir, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// mountsUnder returns the mount points at or below dir, from
// /proc/self/mountinfo.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			found = append(found, mp)
		}
	}
	return found, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeWorkDir removes a target's temporary directory, unless something
// is still mounted inside it: RemoveAll would then delete through the
// mount.
func removeWorkDir(dir string) error {
	if dir == "" {
		return nil
	}
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("remove %s: still mounted inside: %s", dir, strings.Join(mounts, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
