// Command troupe-kube-up runs a local Kubernetes cluster of one troupe node
// on this machine, for trying troupe-kubelet (make kube-up, make
// kube-down):
//
//	troupe-kube-up up     # starts it in the background; the last line is export KUBECONFIG=...
//	troupe-kube-up down   # stops it and removes all it made
//
// up starts one supervisor process, detached (a session of its own), that
// runs a plain-HTTP registry on loopback holding busybox (made from the
// host's static busybox), a troupe daemon of its own, a control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and the
// node agent, all of it keeping its files in one state directory. up
// returns once the node is Ready; run again, it changes nothing and prints
// the same last line. down signals the supervisor (by the pid and start
// time it recorded), which deletes the pods' containers and stops
// everything; down then removes the directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/kubelet/internal/agent"
	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// DefaultDir is the default state directory: on /run, a tmpfs, it goes
// with a reboot, as the processes do.
const DefaultDir = "/run/troupe-kube-up"

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "troupe-kube-up:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "troupe-kube-up",
		Short:         "run a local Kubernetes cluster of one troupe node",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var dir string
	root.PersistentFlags().StringVar(&dir, "dir", DefaultDir, "state directory: logs, data, the kubeconfig; down removes it")
	root.AddCommand(newUpCommand(&dir), newDownCommand(&dir), newSuperviseCommand(&dir))
	return root
}

func newUpCommand(dir *string) *cobra.Command {
	c := config{
		Registry:     "127.0.0.1:5000",
		NodeName:     agent.Defaults().NodeName,
		PodCIDR:      "10.89.0.0/21",
		Bridge:       "troupe-kup0",
		CgroupParent: "/troupe-kube-up",
	}
	timeout := 5 * time.Minute
	cmd := &cobra.Command{
		Use:   "up",
		Short: "start the cluster, unless it runs; print export KUBECONFIG=... last",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(*dir)
			if err != nil {
				return err
			}
			c.Dir = abs
			if c.Troupe == "" {
				if c.Troupe, err = besideSelf("troupe"); err != nil {
					return err
				}
			}
			if err := c.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return up(ctx, cmd.OutOrStdout(), c, timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Troupe, "troupe", "", "the troupe binary (default: troupe beside this program)")
	f.StringVar(&c.Registry, "registry", c.Registry, "loopback HOST:PORT of the registry serving busybox:1")
	f.StringVar(&c.NodeName, "node-name", c.NodeName, "the node's name")
	f.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "the node's range of pod addresses")
	f.StringVar(&c.Bridge, "bridge", c.Bridge, "the pods' bridge (at most 15 characters)")
	f.StringVar(&c.CgroupParent, "cgroup-parent", c.CgroupParent, "cgroup parent of the troupe daemon's containers (down kills all below it)")
	f.DurationVar(&timeout, "timeout", timeout, "how long up waits for the node to be Ready")
	return cmd
}

// check refuses what would have down remove more than kube-up's own.
func (c config) check() error {
	if _, err := netip.ParseAddrPort(c.Registry); err != nil {
		return fmt.Errorf("--registry %q: want IP:PORT: %w", c.Registry, err)
	} else if ap := netip.MustParseAddrPort(c.Registry); !ap.Addr().IsLoopback() {
		return fmt.Errorf("--registry %q: not a loopback address", c.Registry)
	}
	if _, err := netip.ParsePrefix(c.PodCIDR); err != nil {
		return fmt.Errorf("--pod-cidr: %w", err)
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		return fmt.Errorf("--bridge %q: want 1 to 15 characters", c.Bridge)
	}
	if !strings.HasPrefix(c.CgroupParent, "/") || filepath.Clean(c.CgroupParent) == "/" || c.CgroupParent == "/troupe" {
		return fmt.Errorf("--cgroup-parent %q: want a cgroup of kube-up's own, such as /troupe-kube-up", c.CgroupParent)
	}
	if c.Dir == "/" {
		return errors.New("--dir /: want a directory of kube-up's own")
	}
	return nil
}

// besideSelf is the program name in this program's directory.
func besideSelf(name string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no %s beside %s (make build makes it; --troupe names another): %w", name, exe, err)
	}
	return p, nil
}

// up starts a supervisor on c.Dir unless one runs, waits until the node is
// Ready, and prints the kubeconfig's export line last.
func up(ctx context.Context, out io.Writer, c config, timeout time.Duration) error {
	if os.Geteuid() != 0 {
		return errors.New("up needs root: the troupe daemon and the pods' network do")
	}
	var cp controlplane.Options
	if missing := cp.Missing(); len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, "; "))
	}
	if _, err := os.Stat(registryBinary); err != nil {
		return fmt.Errorf("no %s (make deps installs Debian's docker-registry)", registryBinary)
	}
	if err := ours(c.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	// The lock taken here passes to the supervisor: no other up can take
	// it in between and sweep what this one starts.
	var spawned *exec.Cmd
	lk, free, err := lock(c.Dir)
	if err != nil {
		return err
	}
	if !free {
		if old, err := readConfig(c.Dir); err == nil && old != c {
			fmt.Fprintf(out, "troupe-kube-up: already running in %s, as it was started (%s down stops it)\n", c.Dir, os.Args[0])
		}
	} else {
		// A supervisor that died leaves what it started: sweep it first.
		err := sweep(c.Dir, true)
		if err == nil {
			err = writeConfig(c)
		}
		if err == nil {
			fmt.Fprintf(out, "troupe-kube-up: starting in %s (logs: %s)\n", c.Dir, c.path("logs"))
			spawned, err = spawn(c, lk)
		}
		lk.Close()
		if err != nil {
			return err
		}
	}
	kubeconfig, err := waitUp(ctx, c.Dir, spawned, timeout)
	if err != nil {
		return err
	}
	c, err = readConfig(c.Dir)
	if err != nil {
		return err
	}
	bin, _ := controlplane.DefaultBinDir()
	fmt.Fprintf(out, "troupe-kube-up: node %s is Ready; the registry %s serves %s; kubectl is %s\n",
		c.NodeName, c.Registry, c.image(), filepath.Join(bin, "kubectl"))
	fmt.Fprintf(out, "export KUBECONFIG=%s\n", kubeconfig)
	return nil
}

// supervised reports whether a supervisor holds dir's lock.
func supervised(dir string) (bool, error) {
	lk, ok, err := lock(dir)
	if err != nil {
		return false, err
	}
	if ok {
		lk.Close()
	}
	return !ok, nil
}

// spawn starts the supervisor: this program, in a session of its own, its
// output in the state directory, holding lk (as its file descriptor 3).
func spawn(c config, lk *os.File) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(c.path(logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "supervise", "--dir", c.Dir, "--lock-fd", "3")
	cmd.ExtraFiles = []*os.File{lk}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the supervisor: %w", err)
	}
	return cmd, nil
}

// waitUp waits until the supervisor on dir is ready, and returns the
// kubeconfig's path. spawned, if not nil, is a supervisor this process
// started: its exit ends the wait (another one may have won the lock).
func waitUp(ctx context.Context, dir string, spawned *exec.Cmd, timeout time.Duration) (string, error) {
	exited := make(chan error, 1)
	if spawned != nil {
		go func() { exited <- spawned.Wait() }()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		running, err := supervised(dir)
		if err != nil {
			return "", err
		}
		if running {
			if data, err := os.ReadFile(filepath.Join(dir, readyFile)); err == nil {
				return strings.TrimSpace(string(data)), nil
			}
		}
		select {
		case err := <-exited:
			if running, _ := supervised(dir); running {
				// Another up's supervisor runs: wait for that one.
				exited = nil
				continue
			}
			return "", fmt.Errorf("the supervisor exited (%v): %s\n(logs in %s; down removes them)", err, failure(dir), dir)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return "", fmt.Errorf("interrupted; the supervisor goes on in the background (%s down stops it)", os.Args[0])
			}
			return "", fmt.Errorf("not ready within %s; see %s; %s down stops what started",
				timeout, filepath.Join(dir, logFile), os.Args[0])
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// failure says why the supervisor on dir gave up.
func failure(dir string) string {
	if data, err := os.ReadFile(filepath.Join(dir, failedFile)); err == nil {
		return strings.TrimSpace(string(data))
	}
	data, _ := os.ReadFile(filepath.Join(dir, logFile))
	return "its log:\n" + string(tailBytes(data, 4096))
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func newDownCommand(dir *string) *cobra.Command {
	timeout := 2 * time.Minute
	cmd := &cobra.Command{
		Use:   "down",
		Short: "stop the cluster and remove all it made (a no-op when none runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(*dir)
			if err != nil {
				return err
			}
			return down(cmd.OutOrStdout(), abs, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long the supervisor has to stop everything before it is killed")
	return cmd
}

// down stops the supervisor on dir, if one runs, and removes all that is
// left.
func down(out io.Writer, dir string, timeout time.Duration) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "troupe-kube-up: nothing runs in %s\n", dir)
		return nil
	}
	if err := ours(dir); err != nil {
		return err
	}
	var errs []error
	ps, err := readProcs(filepath.Join(dir, pidFile))
	if err != nil {
		return err
	}
	for _, p := range ps {
		if !p.alive() {
			continue
		}
		fmt.Fprintf(out, "troupe-kube-up: stopping (supervisor %d)\n", p.PID)
		_ = p.signal(syscall.SIGTERM)
		if !waitGone(p, timeout) {
			_ = p.signal(syscall.SIGKILL)
			waitGone(p, 10*time.Second)
			errs = append(errs, fmt.Errorf("the supervisor did not stop within %s (killed)", timeout))
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, logFile)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") {
				fmt.Fprintln(out, line)
			}
		}
	}
	errs = append(errs, sweep(dir, false))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "troupe-kube-up: stopped; %s removed\n", dir)
	return nil
}

func waitGone(p proc, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !p.alive() {
			return true
		}
	}
	return !p.alive()
}

// sweep removes what a supervisor on dir left, which is nothing when it
// stopped cleanly but dir: the processes it recorded, those under its
// cgroup parent, the pods' bridge, and dir with whatever is mounted below
// it (but its lock file, with keepLock). A supervisor must not run on dir.
func sweep(dir string, keepLock bool) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	ps, err := readProcs(filepath.Join(dir, childrenFile))
	errs = append(errs, err)
	for _, p := range ps {
		if p.alive() {
			_ = p.signal(syscall.SIGKILL)
			if !waitGone(p, 10*time.Second) {
				errs = append(errs, fmt.Errorf("process %d (%s) still there after SIGKILL", p.PID, p.Name))
			}
		}
	}
	if c, err := readConfig(dir); err == nil {
		errs = append(errs, removeCgroup(c.CgroupParent), removeBridge(c.Bridge))
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	remove := []string{dir}
	if keepLock {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		remove = remove[:0]
		for _, e := range entries {
			if e.Name() != lockFile {
				remove = append(remove, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, p := range remove {
		// What the pods' containers had mounted below p is unmounted; that
		// linuxtest.RemoveAll reports it is no failure here.
		if err := linuxtest.RemoveAll(p); err != nil {
			if _, serr := os.Lstat(p); !errors.Is(serr, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ours refuses a directory that is neither missing, empty nor kube-up's:
// up and down remove the state directory with all it holds.
func ours(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	for _, f := range []string{configFile, lockFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is not kube-up's state directory (no %s in it): not touching it", dir, configFile)
}

// removeCgroup kills whatever runs below the cgroup parent and removes it.
func removeCgroup(parent string) error {
	if parent == "" {
		return nil
	}
	_, err := linuxtest.KillCgroup(parent)
	linuxtest.RemoveCgroup(parent)
	return err
}

func newSuperviseCommand(dir *string) *cobra.Command {
	lockFD := -1
	cmd := &cobra.Command{
		Use:    "supervise",
		Short:  "run the cluster in the foreground (what up starts in the background)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readConfig(*dir)
			if err != nil {
				return err
			}
			// Stopped by down's SIGTERM; SIGINT too, for a run by hand.
			// SIGHUP is ignored: the session that started it may end.
			signal.Ignore(syscall.SIGHUP)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return supervise(ctx, c, lockFD)
		},
	}
	cmd.Flags().IntVar(&lockFD, "lock-fd", lockFD, "file descriptor of the state directory's lock, taken (default: take it)")
	return cmd
}
