package provider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/runtime/podns"
)

// The messages a worker takes.
type (
	// exitMsg: troupe reports that a container's init exited.
	exitMsg struct{ ev api.Event }
	// deleteMsg: the pod is being deleted; its containers get grace.
	deleteMsg struct{ grace time.Duration }
	// updateMsg: the pod's spec changed.
	updateMsg struct{ pod *corev1.Pod }
	// resyncMsg: events may have been lost; look at the containers.
	resyncMsg struct{}
)

// opTimeout bounds one call to troupe other than a start (whose image
// pull may take long; the deletion of the pod cancels it).
const opTimeout = time.Minute

// worker runs one pod. Its fields below the mailbox are its own: only its
// goroutine touches them.
type worker struct {
	p               *Provider
	uid             types.UID
	namespace, name string

	mu       sync.Mutex
	inbox    []any
	wake     chan struct{}
	cancel   context.CancelFunc // cancels the operation in progress
	quit     chan struct{}
	done     chan struct{}
	snap     *corev1.Pod // the last published pod
	quitOnce sync.Once

	pod   *corev1.Pod
	start Starter
	// sandbox holds the pod's namespaces, once found or made.
	sandbox *podns.Sandbox
	// hadSandbox says the pod had a sandbox on this node, found or made:
	// only then may it hold an address to release before a new one.
	hadSandbox bool
	ip         netip.Addr
	inits      []*ctr
	apps       []*ctr
	deleting   *deleteMsg
	// setupErr is why the sandbox, network or volumes could not be made;
	// setupTries counts the failures, retried with backoff.
	setupErr   error
	setupTries int
	setupNext  time.Time
	startTime  metav1.Time
	conditions map[corev1.PodConditionType]corev1.PodCondition
	// adopted says the first look at troupe's containers is done.
	adopted bool
	stages  stages
}

// instance is a running container of troupe, known by its init's pid.
type instance struct {
	pid     int
	started time.Time
}

func (i instance) running() bool { return i.pid != 0 }

// ctr is one of the pod's containers.
type ctr struct {
	spec corev1.Container
	init bool
	id   string
	// cur is the running incarnation, if any.
	cur instance
	// ended is how the last incarnation ended; nil if none did since the
	// container last started.
	ended *corev1.ContainerStateTerminated
	// last is how the incarnation before the current one ended
	// (lastState).
	last *corev1.ContainerStateTerminated
	// started says it ran at least once (in this agent or an earlier one);
	// mayExist that troupe may have it: not known to be unknown.
	started, mayExist bool
	restarts          int32
	// waiting is why it does not run, while it does not.
	waiting *corev1.ContainerStateWaiting
	// next is when it may be started again; fails counts the starts and
	// restarts in a row behind the backoff.
	next    time.Time
	fails   int
	imageID string
}

func newWorker(p *Provider, pod *corev1.Pod) *worker {
	w := &worker{
		p: p, uid: pod.UID, namespace: pod.Namespace, name: pod.Name,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		pod: pod, conditions: map[corev1.PodConditionType]corev1.PodCondition{},
		stages: stages{created: time.Now()},
	}
	w.startTime = metav1.Now()
	if pod.Status.StartTime != nil {
		w.startTime = *pod.Status.StartTime
	}
	restarts := map[string]corev1.ContainerStatus{}
	for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		restarts[cs.Name] = cs
	}
	mk := func(c corev1.Container, init bool) *ctr {
		x := &ctr{spec: c, init: init, id: podid.Container(pod.UID, c.Name),
			waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		if cs, ok := restarts[c.Name]; ok {
			x.restarts = cs.RestartCount
			x.last = cs.LastTerminationState.Terminated
		}
		return x
	}
	for _, c := range pod.Spec.InitContainers {
		w.inits = append(w.inits, mk(c, true))
	}
	for _, c := range pod.Spec.Containers {
		w.apps = append(w.apps, mk(c, false))
	}
	// The pod's first status (its containers ContainerCreating) counts as
	// told: it only goes out once something changes, so a start costs
	// one status write, not two. Telling it after a second of starting
	// instead cost a write for nearly every pod of a burst: 1000 pods took
	// 157 and 192 s to be Running where they take 111 and 130 s this way.
	w.snap = w.podWithStatus()
	return w
}

// send puts m in the mailbox; a deletion also cancels what the worker is
// doing (an image pull, say).
func (w *worker) send(m any) {
	w.mu.Lock()
	w.inbox = append(w.inbox, m)
	if _, ok := m.(deleteMsg); ok && w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) take() []any {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.inbox
	w.inbox = nil
	return in
}

// stop ends the worker without touching its containers (the agent is
// stopping) and waits for it.
func (w *worker) stop() {
	w.quitOnce.Do(func() { close(w.quit) })
	w.mu.Lock()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	<-w.done
}

func (w *worker) snapshot() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap.DeepCopy()
}

// opContext is the context of the worker's next operation: cancelled by
// stop and by a deletion.
func (w *worker) opContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	w.cancel = cancel
	for _, m := range w.inbox {
		if _, ok := m.(deleteMsg); ok {
			cancel()
		}
	}
	w.mu.Unlock()
	select {
	case <-w.quit:
		cancel()
	default:
	}
	return ctx, cancel
}

func (w *worker) run() {
	defer close(w.done)
	w.publish()
	for {
		ctx, cancel := w.opContext()
		for _, m := range w.take() {
			w.handle(ctx, m)
		}
		wait, finished := w.reconcile(ctx)
		cancel()
		w.publish()
		if finished {
			w.p.gone(w)
			return
		}
		var timer <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-w.quit:
			return
		case <-w.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (w *worker) handle(ctx context.Context, m any) {
	switch m := m.(type) {
	case exitMsg:
		w.exited(ctx, m.ev.Container, m.ev.Pid, m.ev.ExitStatus, m.ev.Time)
	case deleteMsg:
		if w.deleting == nil || m.grace < w.deleting.grace {
			w.deleting = &m
		}
	case updateMsg:
		w.update(m.pod)
	case resyncMsg:
		w.resync(ctx)
	}
}

// update takes a new spec: the containers' images may have changed.
func (w *worker) update(pod *corev1.Pod) {
	w.pod = pod
	specs := map[string]corev1.Container{}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		specs[c.Name] = c
	}
	for _, c := range w.all() {
		if s, ok := specs[c.spec.Name]; ok {
			c.spec = s
		}
	}
	if pod.DeletionTimestamp != nil && w.deleting == nil {
		w.deleting = &deleteMsg{grace: gracePeriod(pod)}
	}
}

func (w *worker) all() []*ctr { return append(append([]*ctr(nil), w.inits...), w.apps...) }

// adopt looks at what troupe runs of the pod already: after a restart of
// the agent, its containers run on and are taken over as they are.
func (w *worker) adopt(ctx context.Context) {
	w.adopted = true
	cli := w.p.cfg.Troupe
	if sb, ok, err := w.p.cfg.Sandboxes.Get(string(w.uid)); err != nil {
		w.p.log.Warn("look for the pod's sandbox", "pod", w.namespace+"/"+w.name, "err", err)
	} else if ok {
		w.sandbox, w.hadSandbox = &sb, true
	}
	for _, x := range w.all() {
		c, err := cli.Get(ctx, x.id)
		x.mayExist = !errors.Is(err, errclass.NotFound)
		if err != nil {
			continue
		}
		x.started = true
		x.imageID = c.Image
		if running(c) {
			x.cur = instance{pid: c.Processes[0].Pid, started: c.Created}
			x.waiting = nil
			w.stages.told = true // an earlier agent started it
			continue
		}
		if c.State.Status == api.Stopped {
			x.ended = terminated(c, exitCode(c.State.ExitStatus), c.Created, time.Now())
			x.waiting = nil
			w.scheduleRestart(x, time.Now())
		}
	}
}

func running(c api.Container) bool {
	return (c.State.Status == api.Running || c.State.Status == api.Paused) && len(c.Processes) > 0
}

func exitCode(p *int) int32 {
	if p == nil {
		return -1
	}
	return int32(*p)
}

// terminated describes how container c ended.
func terminated(c api.Container, code int32, started, finished time.Time) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode: code, StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished),
		ContainerID: "troupe://" + c.ID, Reason: "Error",
	}
	switch {
	case c.State.OOMKilled:
		t.Reason = "OOMKilled"
	case code == 0:
		t.Reason = "Completed"
	case code < 0:
		// The init was not the running daemon's child: no one could
		// wait for its status.
		t.Reason = "ContainerStatusUnknown"
		t.Message = "the troupe daemon restarted while the container ran: its exit status is unknown"
	}
	if code > 128 && code < 128+65 {
		t.Signal = code - 128
	}
	return t
}

// exited records that the container id's init, pid, exited.
func (w *worker) exited(ctx context.Context, id string, pid int, status *int, at time.Time) {
	for _, x := range w.all() {
		if x.id != id || !x.cur.running() || (pid != 0 && x.cur.pid != pid) {
			continue
		}
		c, err := w.p.cfg.Troupe.Get(ctx, id)
		if err != nil {
			c = api.Container{ID: id}
		}
		if c.State.ExitStatus != nil && status == nil {
			status = c.State.ExitStatus
		}
		x.ended = terminated(c, exitCode(status), x.cur.started, at)
		x.cur = instance{}
		w.scheduleRestart(x, at)
	}
}

// resync looks at each container troupe should be running: one that
// stopped, or is gone, while the stream was down is taken as exited.
func (w *worker) resync(ctx context.Context) {
	if !w.adopted {
		return
	}
	cli := w.p.cfg.Troupe
	w.forgetGoneSandbox()
	for _, x := range w.all() {
		if !x.cur.running() {
			continue
		}
		c, err := cli.Get(ctx, x.id)
		switch {
		case errors.Is(err, errclass.NotFound):
			w.exited(ctx, x.id, x.cur.pid, nil, time.Now())
		case err == nil && (!running(c) || c.Processes[0].Pid != x.cur.pid):
			w.exited(ctx, x.id, x.cur.pid, c.State.ExitStatus, time.Now())
		}
	}
}

// mayRestart says whether the pod's restart policy starts x again after
// it ended as it did.
func (w *worker) mayRestart(x *ctr) bool {
	if x.ended == nil {
		return true
	}
	switch w.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return x.ended.ExitCode != 0
	}
	// Always, for app containers; an init container that succeeded is
	// done.
	return !x.init || x.ended.ExitCode != 0
}

// scheduleRestart sets when x, which ended at, may start again: at once
// the first time, then after a backoff that doubles with each restart in
// a row; a container that ran for MaxBackoff starts the count over.
func (w *worker) scheduleRestart(x *ctr, at time.Time) {
	if !w.mayRestart(x) {
		return
	}
	if x.ended != nil && at.Sub(x.ended.StartedAt.Time) >= w.p.cfg.MaxBackoff {
		x.fails = 0
	}
	x.next = at.Add(w.backoff(x.fails))
	x.fails++
}

func (w *worker) backoff(fails int) time.Duration {
	if fails == 0 {
		return 0
	}
	d := w.p.cfg.Backoff
	for i := 1; i < fails && d < w.p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.p.cfg.MaxBackoff)
}

// reconcile takes the next steps towards what the pod asks, and returns
// how long to wait before looking again when nothing else wakes the
// worker (0: only a message will), or finished once the pod is gone.
func (w *worker) reconcile(ctx context.Context) (wait time.Duration, finished bool) {
	if w.deleting != nil {
		w.teardown()
		return 0, true
	}
	if !w.adopted {
		w.adopt(ctx)
	}
	now := time.Now()
	if w.needsSetup() {
		if now.Before(w.setupNext) {
			return w.setupNext.Sub(now), false
		}
		if err := w.setup(ctx); err != nil {
			if ctx.Err() != nil {
				return 0, false
			}
			w.setupErr = err
			w.setupTries++
			w.setupNext = now.Add(max(w.backoff(w.setupTries), time.Second))
			w.p.log.Warn("pod setup failed", "pod", w.namespace+"/"+w.name, "err", err)
			return w.setupNext.Sub(now), false
		}
		w.setupErr, w.setupTries = nil, 0
	}
	for _, x := range w.inits {
		switch {
		case x.cur.running():
			return 0, false
		case x.ended != nil && x.ended.ExitCode == 0:
			continue
		case !w.mayRestart(x):
			return 0, false // the pod failed
		}
		if left := x.next.Sub(now); left > 0 {
			x.backingOff()
			return left, false
		}
		w.startContainer(ctx, x)
		if x.cur.running() {
			return 0, false
		}
		return max(x.next.Sub(time.Now()), 0), false
	}
	for _, x := range w.apps {
		if x.cur.running() || (x.ended != nil && !w.mayRestart(x)) {
			continue
		}
		if left := x.next.Sub(now); left > 0 {
			x.backingOff()
			wait = minWait(wait, left)
			continue
		}
		w.startContainer(ctx, x)
		if !x.cur.running() {
			wait = minWait(wait, max(x.next.Sub(time.Now()), time.Millisecond))
		}
	}
	return wait, false
}

func minWait(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

// backingOff shows x waiting for its restart.
func (x *ctr) backingOff() {
	if x.ended != nil {
		x.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s", x.spec.Name)}
	}
}

// needsSetup says whether the pod lacks its volumes, its sandbox or its
// address. The address comes last and may fail alone (no address left,
// say): the sandbox then runs, but no container may start before the pod
// has its address.
func (w *worker) needsSetup() bool {
	return w.start == nil || w.sandbox == nil || (w.p.cfg.Network != nil && !w.ip.IsValid())
}

// setup makes what the pod's containers need: its volumes, its sandbox and
// its place on the pod network.
func (w *worker) setup(ctx context.Context) error {
	if w.start == nil {
		var start Starter
		err := timed(&w.stages.volumes, func() (err error) {
			start, err = w.p.cfg.Prepare(ctx, w.pod)
			return err
		})
		if err != nil {
			return fmt.Errorf("prepare volumes: %w", err)
		}
		w.start = start
	}
	if w.sandbox == nil {
		// The containers joined the namespaces of the sandbox that is
		// gone: they go too, and start again in the new one.
		for _, x := range w.all() {
			if x.cur.running() {
				w.kill(ctx, x)
			}
		}
		// A pod that never had a sandbox here has no address to
		// release: at a thousand new pods, a DEL each (two plugin runs)
		// costs as much as their ADDs. An attachment cached from an
		// earlier agent's sandbox is Add's to release.
		if w.p.cfg.Network != nil && w.hadSandbox {
			if err := w.p.cfg.Network.Del(ctx, string(w.uid), ""); err != nil {
				return fmt.Errorf("detach the old sandbox from the pod network: %w", err)
			}
		}
		hostname, err := w.p.cfg.Hostname(w.pod)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		var sb podns.Sandbox
		err = timed(&w.stages.sandbox, func() (err error) {
			sb, err = w.p.cfg.Sandboxes.Make(string(w.uid), hostname)
			return err
		})
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		w.sandbox, w.hadSandbox = &sb, true
		w.ip = netip.Addr{}
	}
	if w.p.cfg.Network != nil && !w.ip.IsValid() {
		var ip netip.Addr
		err := timed(&w.stages.network, func() (err error) {
			ip, err = w.p.cfg.Network.Add(ctx, string(w.uid), w.sandbox.Network)
			return err
		})
		if err != nil {
			// A sandbox removed under the pod is made again at the next
			// try, rather than tried forever.
			w.forgetGoneSandbox()
			return fmt.Errorf("attach the pod to the pod network: %w", err)
		}
		w.ip = ip
	}
	return nil
}

// forgetGoneSandbox forgets the pod's sandbox if it is no longer there:
// the next setup makes the pod again, its containers in a new sandbox.
func (w *worker) forgetGoneSandbox() {
	if w.sandbox == nil {
		return
	}
	if _, ok, err := w.p.cfg.Sandboxes.Get(string(w.uid)); err == nil && !ok {
		w.p.log.Warn("pod sandbox gone; remaking the pod", "pod", w.namespace+"/"+w.name)
		w.sandbox, w.ip = nil, netip.Addr{}
	}
}

// kill ends an incarnation of x whose sandbox went: it counts as exited.
func (w *worker) kill(ctx context.Context, x *ctr) {
	if err := w.p.cfg.Troupe.Delete(ctx, x.id, true); err != nil && !errors.Is(err, errclass.NotFound) {
		w.p.log.Warn("delete container", "id", x.id, "err", err)
	}
	code := 128 + int(syscall.SIGKILL)
	w.exited(ctx, x.id, x.cur.pid, &code, time.Now())
}

// startContainer starts x, a new incarnation in place of any earlier one.
func (w *worker) startContainer(ctx context.Context, x *ctr) {
	fail := func(reason string, err error) {
		x.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		x.next = time.Now().Add(max(w.backoff(x.fails+1), time.Second))
		x.fails++
		w.p.log.Warn("container start failed", "pod", w.namespace+"/"+w.name, "container", x.spec.Name, "reason", reason, "err", err)
	}
	req, err := w.start(&x.spec, *w.sandbox, w.ip)
	if err != nil {
		fail("CreateContainerConfigError", err)
		return
	}
	cli := w.p.cfg.Troupe
	if x.started || x.mayExist {
		if err := cli.Delete(ctx, x.id, true); err != nil && !errors.Is(err, errclass.NotFound) {
			fail("CreateContainerError", fmt.Errorf("delete the last incarnation: %w", err))
			return
		}
	}
	// From here on troupe may have it, whatever the start says.
	x.mayExist = true
	// The status says ContainerCreating meanwhile, as the kubelet's does
	// while it pulls; one update less per pod counts at a thousand pods.
	var c api.Container
	err = timed(&w.stages.start, func() (err error) {
		c, err = cli.Start(ctx, x.id, req)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		reason := "CreateContainerError"
		switch {
		case errors.Is(err, errclass.NotFound) && req.Pull == api.PullNever:
			reason = "ErrImageNeverPull"
		case strings.Contains(err.Error(), "pull") || errors.Is(err, errclass.NotFound):
			reason = "ErrImagePull"
		}
		fail(reason, err)
		return
	}
	if check := w.p.cfg.Check; check != nil && len(c.Processes) > 0 {
		if err := check(w.pod, &x.spec, c); err != nil {
			if derr := cli.Delete(ctx, x.id, true); derr != nil && !errors.Is(derr, errclass.NotFound) {
				err = fmt.Errorf("%w (and deleting it: %w)", err, derr)
			}
			fail("CreateContainerConfigError", err)
			return
		}
	}
	if x.started {
		x.restarts++
		if x.ended != nil {
			x.last = x.ended
		}
	}
	x.started = true
	x.ended, x.waiting = nil, nil
	x.imageID = c.Image
	x.cur = instance{pid: c.Processes[0].Pid, started: c.Created}
	if x.cur.started.IsZero() {
		x.cur.started = time.Now()
	}
}

// teardown stops the pod: SIGTERM to each container, SIGKILL to those
// still running after the grace period, then removes the containers, the
// sandbox, the pod's network attachment and what Prepare made.
func (w *worker) teardown() {
	cli := w.p.cfg.Troupe
	grace := w.deleting.grace
	ctx, cancel := context.WithTimeout(context.Background(), grace+opTimeout)
	defer cancel()
	deadline := time.Now().Add(grace)
	for _, x := range w.all() {
		if x.cur.running() {
			if err := cli.Kill(ctx, x.id, int(syscall.SIGTERM)); err != nil && !errors.Is(err, errclass.NotFound) {
				w.p.log.Warn("stop container", "id", x.id, "err", err)
			}
		}
	}
	for w.anyRunning() && time.Now().Before(deadline) {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-w.wake:
		case <-t.C:
		case <-w.quit:
			t.Stop()
			return
		}
		t.Stop()
		for _, m := range w.take() {
			if e, ok := m.(exitMsg); ok {
				w.exited(ctx, e.ev.Container, e.ev.Pid, e.ev.ExitStatus, e.ev.Time)
			}
		}
	}
	for _, x := range w.all() {
		if x.cur.running() {
			code := 128 + int(syscall.SIGKILL)
			x.ended = terminated(api.Container{ID: x.id}, int32(code), x.cur.started, time.Now())
			x.cur = instance{}
		}
	}
	var ids []string
	for _, x := range w.all() {
		ids = append(ids, x.id)
	}
	if err := w.p.removePod(ctx, w.uid, ids); err != nil {
		// What is left is collected later: the pod is no longer bound.
		w.p.log.Warn("remove pod", "pod", w.namespace+"/"+w.name, "err", err)
	}
	w.sandbox = nil
	for _, x := range w.all() {
		x.next = time.Time{}
		if x.ended == nil {
			x.ended = &corev1.ContainerStateTerminated{Reason: "ContainerStatusUnknown", ExitCode: 137,
				Message: "the pod was deleted before the container ran", FinishedAt: metav1.Now()}
		}
		x.waiting = nil
	}
	w.ip = netip.Addr{}
}

func (w *worker) anyRunning() bool {
	for _, x := range w.all() {
		if x.cur.running() {
			return true
		}
	}
	return false
}
