package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/http/client"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/agent"
	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
)

// Bounds of the supervisor's waits.
const (
	registryUp   = 30 * time.Second
	daemonUp     = time.Minute
	controlUp    = 3 * time.Minute
	nodeReady    = 2 * time.Minute
	agentStop    = 30 * time.Second
	deleteAll    = time.Minute
	processGrace = 15 * time.Second
)

// supervisor runs the parts of a kube-up, in this order: the registry, the
// troupe daemon, the control plane and the node agent; it stops them in
// the reverse order.
type supervisor struct {
	c   config
	log *slog.Logger

	registry, daemon *child
	cp               *controlplane.ControlPlane
	troupe           *client.Client
	agentStop        context.CancelFunc
	agentDone        chan error
}

// supervise runs a kube-up until ctx ends or a part of it fails, then
// stops every part. It holds the state directory's lock throughout.
//
// lockFD, if not -1, is that lock, taken by up.
func supervise(ctx context.Context, c config, lockFD int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var lk *os.File
	if lockFD >= 0 {
		// Inherited, it would pass on to every program started here,
		// and hold the lock after this process is gone.
		syscall.CloseOnExec(lockFD)
		lk = os.NewFile(uintptr(lockFD), lockFile)
		if err := unix.Flock(lockFD, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return fmt.Errorf("the lock handed over: %w", err)
		}
	} else {
		var ok bool
		var err error
		if lk, ok, err = lock(c.Dir); err != nil {
			return err
		} else if !ok {
			log.Info("another supervisor runs on this directory; leaving it be")
			return nil
		}
	}
	defer lk.Close()
	me, err := self("supervisor")
	if err != nil {
		return err
	}
	if err := writeProcs(c.path(pidFile), []proc{me}); err != nil {
		return err
	}
	os.Remove(c.path(failedFile))
	s := &supervisor{c: c, log: log}
	err = s.run(ctx)
	if err != nil {
		log.Error("giving up", "err", err)
		_ = os.WriteFile(c.path(failedFile), []byte(err.Error()+"\n"), 0o600)
	}
	os.Remove(c.path(readyFile))
	log.Info("stopping")
	if serr := s.stop(); serr != nil {
		log.Error("stopping", "err", serr)
		err = errors.Join(err, serr)
	}
	log.Info("stopped")
	return err
}

// run starts every part and waits until ctx ends (nil) or a part fails.
func (s *supervisor) run(ctx context.Context) error {
	c := s.c
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			return err
		}
	}
	// The control plane makes its directory under the temporary one: in
	// the state directory, it goes with it.
	os.Setenv("TMPDIR", c.path("tmp"))

	// The children are recorded as they come, until all run.
	recording, recorded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(recorded)
		for {
			s.record()
			select {
			case <-recording:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	stopRecording := sync.OnceFunc(func() {
		close(recording)
		<-recorded
	})
	defer stopRecording()

	s.log.Info("starting the registry", "addr", c.Registry)
	var err error
	if s.registry, err = startRegistry(ctx, c); err != nil {
		return err
	}
	if err := pushBusybox(ctx, c); err != nil {
		return err
	}

	s.log.Info("starting the troupe daemon", "binary", c.Troupe)
	if s.daemon, s.troupe, err = startDaemon(ctx, c); err != nil {
		return err
	}

	s.log.Info("starting the control plane")
	cctx, cancel := context.WithTimeout(ctx, controlUp)
	s.cp, err = controlplane.Start(cctx, controlplane.Options{})
	cancel()
	if err != nil {
		return err
	}
	kubeconfig, err := os.ReadFile(s.cp.Kubeconfig)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.path(kubeconfigFile), kubeconfig); err != nil {
		return err
	}

	s.log.Info("starting the node agent", "node", c.NodeName)
	if err := s.startAgent(ctx); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	stopRecording()
	s.record()
	if err := writeFileAtomic(c.path(readyFile), []byte(c.path(kubeconfigFile)+"\n")); err != nil {
		return err
	}
	s.log.Info("ready", "kubeconfig", c.path(kubeconfigFile))

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-s.agentDone:
			s.agentDone = nil
			return fmt.Errorf("the node agent stopped: %w", err)
		case <-s.registry.exited:
			return fmt.Errorf("the registry exited; see %s", s.registry.log)
		case <-s.daemon.exited:
			return fmt.Errorf("the troupe daemon exited; see %s", s.daemon.log)
		case <-tick.C:
			if err := s.cp.Exited(); err != nil {
				return err
			}
		}
	}
}

// record writes the supervisor's children to the state directory: what
// down kills should the supervisor die without stopping them.
func (s *supervisor) record() {
	if err := writeProcs(s.c.path(childrenFile), children(os.Getpid())); err != nil {
		s.log.Error("record the children", "err", err)
	}
}

func (s *supervisor) startAgent(ctx context.Context) error {
	c := s.c
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(c.path("logs/agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	o := agent.Defaults()
	o.NodeName = c.NodeName
	// The node's own credentials, as a real cluster would issue them.
	if o.Kubeconfig, err = s.cp.NodeKubeconfig(ctx, c.NodeName); err != nil {
		logf.Close()
		return err
	}
	o.Troupe = "unix://" + c.path("troupe/troupe.sock")
	o.Port = port
	o.PodCIDR = c.PodCIDR
	o.Bridge = c.Bridge
	o.StateDir = c.path("kubelet")
	o.RunDir = c.path("kubelet-run")
	o.Logger = slog.New(slog.NewTextHandler(logf, nil))
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.agentStop = cancel
	s.agentDone = make(chan error, 1)
	go func() {
		defer logf.Close()
		s.agentDone <- agent.Run(actx, o)
	}()
	return nil
}

// waitReady waits for the node to be Ready.
func (s *supervisor) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, nodeReady)
	defer cancel()
	last := "not registered"
	for {
		n, err := s.cp.Client.CoreV1().Nodes().Get(ctx, s.c.NodeName, metav1.GetOptions{})
		if err == nil {
			last = "not Ready"
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case err := <-s.agentDone:
			s.agentDone = nil
			return fmt.Errorf("the node agent stopped: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready within %s: %s; see %s", s.c.NodeName, nodeReady, last, s.c.path("logs/agent.log"))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// stop stops what run started, the last first: the agent (so that it
// restarts nothing), every container of the daemon (the pods), the daemon,
// whatever is left under its cgroup parent, the registry, the control
// plane, and the pods' bridge. down removes the directory.
func (s *supervisor) stop() error {
	var errs []error
	if s.agentStop != nil {
		s.agentStop()
		if s.agentDone != nil {
			select {
			case err := <-s.agentDone:
				if err != nil {
					errs = append(errs, fmt.Errorf("node agent: %w", err))
				}
			case <-time.After(agentStop):
				errs = append(errs, fmt.Errorf("the node agent did not stop within %s", agentStop))
			}
		}
	}
	if s.troupe != nil {
		errs = append(errs, deleteContainers(s.troupe))
		s.troupe.Close()
	}
	if s.daemon != nil {
		errs = append(errs, s.daemon.stop())
	}
	errs = append(errs, removeCgroup(s.c.CgroupParent))
	if s.registry != nil {
		errs = append(errs, s.registry.stop())
	}
	if s.cp != nil {
		errs = append(errs, s.cp.Stop())
	}
	errs = append(errs, removeBridge(s.c.Bridge))
	return errors.Join(errs...)
}

// deleteContainers deletes, killing them first, all containers of the
// daemon: it is kube-up's own, and holds nothing but pods.
func deleteContainers(troupe *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), deleteAll)
	defer cancel()
	cs, err := troupe.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := troupe.Delete(ctx, c.ID, true); err != nil {
			errs = append(errs, fmt.Errorf("delete container %s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// child is a program the supervisor runs, its output in a log file.
type child struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startChild(c config, name, bin string, args ...string) (*child, error) {
	ch := &child{name: name, log: c.path("logs/" + name + ".log"), exited: make(chan struct{})}
	out, err := os.OpenFile(ch.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	ch.cmd = exec.Command(bin, args...)
	ch.cmd.Stdout, ch.cmd.Stderr = out, out
	if err := ch.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		ch.cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

// stop sends SIGTERM, then SIGKILL after a grace, and waits for the exit.
func (ch *child) stop() error {
	select {
	case <-ch.exited:
		return nil
	default:
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.exited:
		return nil
	case <-time.After(processGrace):
	}
	_ = ch.cmd.Process.Kill()
	<-ch.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM (killed)", ch.name, processGrace)
}

// waitUp polls check until it succeeds, the child exits or timeout passes.
func (ch *child) waitUp(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ch.exited:
			return fmt.Errorf("%s exited while starting (%v); see %s", ch.name, err, ch.log)
		case <-ctx.Done():
			return fmt.Errorf("%s not up within %s: %v; see %s", ch.name, timeout, err, ch.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func startDaemon(ctx context.Context, c config) (*child, *client.Client, error) {
	sock := c.path("troupe/troupe.sock")
	d, err := startChild(c, "troupe", c.Troupe, "daemon",
		"--root", c.path("troupe/root"), "--state", c.path("troupe/state"),
		"--listen", "unix://"+sock, "--cgroup-parent", c.CgroupParent,
		// Pods' volumes are bind mounts of directories the agent fills.
		"--allow-binds")
	if err != nil {
		return nil, nil, err
	}
	troupe, err := client.New("unix://" + sock)
	if err != nil {
		d.stop()
		return nil, nil, err
	}
	if err := d.waitUp(ctx, daemonUp, troupe.Health); err != nil {
		troupe.Close()
		return d, nil, err
	}
	return d, troupe, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeBridge deletes the pods' bridge if it is there.
func removeBridge(name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("remove bridge %s: %w: %s", name, err, out)
	}
	return nil
}
