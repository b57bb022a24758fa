// Package provider runs Kubernetes pods as troupe containers: it is the
// virtual-kubelet provider of the node agent.
//
// Each pod has a worker, a goroutine that alone starts, watches, restarts
// and stops the pod's containers, reconciling what the pod asks with what
// troupe runs; the provider routes to it the pod's updates, its deletion
// and the exits troupe reports on its event stream. The pod's status is
// what the worker last published: virtual-kubelet pushes it to the API
// server as it changes (PodNotifier).
//
// A pod's sandbox, its network, IPC and UTS namespaces, is held by bind
// mounts (package podns), not by a process: its containers join it by
// path.
//
// The agent keeps nothing of its own on disk but the sandboxes: after a
// restart it finds its pods' containers by their ids (package podid) and
// their sandboxes by their uids, adopts those still running when
// virtual-kubelet hands it the pods again, and removes those of pods
// that are gone.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/runtime/podns"
)

// Network gives pods their addresses: it attaches a sandbox's network
// namespace to the node's pod network, and detaches it.
type Network interface {
	Add(ctx context.Context, podID, netns string) (netip.Addr, error)
	// Del must release the pod's address even when netns is gone or "".
	Del(ctx context.Context, podID, netns string) error
	// Attached lists the pods attached, for the garbage collector.
	Attached() ([]string, error)
}

// Starter makes the start of one of a pod's containers, joining the
// namespaces of the pod's sandbox; podIP is the pod's address, if it has
// one.
type Starter func(c *corev1.Container, sandbox podns.Sandbox, podIP netip.Addr) (api.StartRequest, error)

// Config is what a Provider needs.
type Config struct {
	// Troupe is the client of the node's troupe daemon.
	Troupe *client.Client
	// NodeIP is the node's address, the pods' hostIP.
	NodeIP string
	// Pods lists the pods bound to the node (virtual-kubelet's informer):
	// the garbage collector keeps the containers of the pods it lists.
	Pods corev1listers.PodLister
	// Network attaches pods to the pod network; nil leaves them without
	// one (their sandbox's namespace has only loopback).
	Network Network
	// Sandboxes hold the pods' namespaces.
	Sandboxes *podns.Manager
	// Hostname is the host name of a pod's sandbox; an error (a pod that
	// troupe cannot run as it asks) keeps the pod from starting.
	Hostname func(pod *corev1.Pod) (string, error)
	// Prepare readies what a pod's containers need on the host (its
	// volumes) and returns how to start them; it is called again after a
	// restart of the agent and must then find its work done.
	Prepare func(ctx context.Context, pod *corev1.Pod) (Starter, error)
	// Check, if set, vets a container just started, before it counts as
	// running (runAsNonRoot, when the user is the image's): an error
	// deletes it and is reported as its CreateContainerConfigError.
	Check func(pod *corev1.Pod, c *corev1.Container, started api.Container) error
	// Cleanup removes what Prepare made for a pod; Prepared lists the
	// pods it made something for (nil: none is collected after a crash).
	Cleanup  func(uid types.UID) error
	Prepared func() ([]types.UID, error)
	// Backoff is the first delay before a container that exited is
	// started again; it doubles at each restart up to MaxBackoff, and
	// starts over once a container has run for MaxBackoff (as the
	// kubelet's, whose values are 10 s and 5 min).
	Backoff, MaxBackoff time.Duration
	Logger              *slog.Logger
}

// Provider is the virtual-kubelet provider. Its methods are safe for
// concurrent use.
type Provider struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// workers are the pods the provider runs, by uid; byName finds them
	// by namespace/name for virtual-kubelet's lookups.
	workers map[types.UID]*worker
	byName  map[string]*worker
	notify  func(*corev1.Pod)
}

// New returns a Provider; Run must be running for its pods to start.
func New(cfg Config) (*Provider, error) {
	if cfg.Troupe == nil || cfg.Sandboxes == nil || cfg.Hostname == nil || cfg.Prepare == nil || cfg.Cleanup == nil {
		return nil, errors.New("provider: Troupe, Sandboxes, Hostname, Prepare and Cleanup are required")
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 10 * time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(5*time.Minute, cfg.Backoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Provider{
		cfg: cfg, log: cfg.Logger,
		workers: map[types.UID]*worker{}, byName: map[string]*worker{},
	}, nil
}

func key(namespace, name string) string { return namespace + "/" + name }

// CreatePod starts running pod, or adopts its containers when troupe runs
// them already (the agent restarted). It returns at once: the worker
// reports the pod's progress in its status.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.workers[pod.UID]; w != nil {
		w.send(updateMsg{pod.DeepCopy()})
		return nil
	}
	w := newWorker(p, pod.DeepCopy())
	p.workers[pod.UID] = w
	p.byName[key(pod.Namespace, pod.Name)] = w
	go w.run()
	return nil
}

// UpdatePod takes the pod's new spec. Kubernetes lets little of a pod
// change; what the worker honours is its deletion, and an image changed
// for a container, which takes effect at the container's next start.
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	w := p.worker(pod.Namespace, pod.Name)
	if w == nil || w.uid != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	w.send(updateMsg{pod.DeepCopy()})
	return nil
}

// DeletePod stops the pod's containers, giving each its grace period, and
// removes them and all the pod left; the worker then reports the pod
// terminated and goes.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	w := p.workers[pod.UID]
	p.mu.Unlock()
	if w == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	w.send(deleteMsg{grace: gracePeriod(pod)})
	return nil
}

// gracePeriod is how long the pod's containers get between SIGTERM and
// SIGKILL.
func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// GetPod returns the pod as its worker last published it.
func (p *Provider) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	w := p.worker(namespace, name)
	if w == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	return w.snapshot(), nil
}

// GetPodStatus returns the pod's status as its worker last published it.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod the provider runs.
func (p *Provider) GetPods(ctx context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	pods := make([]*corev1.Pod, 0, len(ws))
	for _, w := range ws {
		pods = append(pods, w.snapshot())
	}
	return pods, nil
}

// NotifyPods registers the callback virtual-kubelet passes: the workers
// call it with each status they publish.
func (p *Provider) NotifyPods(ctx context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = cb
	p.mu.Unlock()
}

func (p *Provider) worker(namespace, name string) *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byName[key(namespace, name)]
}

// ContainerID returns the troupe id of a container of a pod the provider
// runs, for the kubelet API's logs and exec.
func (p *Provider) ContainerID(namespace, pod, container string) (string, error) {
	w := p.worker(namespace, pod)
	if w == nil {
		return "", errdefs.NotFoundf("pod %s/%s is not on this node", namespace, pod)
	}
	snap := w.snapshot()
	for _, cs := range append(snap.Status.InitContainerStatuses, snap.Status.ContainerStatuses...) {
		if cs.Name == container {
			return podid.Container(w.uid, container), nil
		}
	}
	return "", errdefs.NotFoundf("pod %s/%s has no container %q", namespace, pod, container)
}

// published is called by a worker with each status it publishes.
func (p *Provider) published(pod *corev1.Pod) {
	p.mu.Lock()
	cb := p.notify
	p.mu.Unlock()
	if cb != nil {
		cb(pod)
	}
}

// gone forgets a worker that has finished.
func (p *Provider) gone(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workers[w.uid] == w {
		delete(p.workers, w.uid)
	}
	if k := key(w.namespace, w.name); p.byName[k] == w {
		delete(p.byName, k)
	}
}

// Run follows troupe's event stream, routing exits to the workers, until
// ctx ends. The workers stop with ctx; the containers run on.
func (p *Provider) Run(ctx context.Context) error {
	err := p.followEvents(ctx)
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	return err
}

// followEvents reads the event stream, resuming after the last event it
// saw when the stream breaks, so that no exit goes unseen. The first
// subscription replays every event the daemon still holds: a worker that
// looked at its containers before the stream was up still hears of an
// exit that came after its look (exits of earlier incarnations of a
// container are told apart by pid). A gap, events the daemon could no
// longer replay, has every worker look again, as does a new stream.
func (p *Provider) followEvents(ctx context.Context) error {
	since := new(uint64)
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		evs, errs := p.cfg.Troupe.Events(sctx, client.EventsRequest{Since: since})
		for ev := range evs {
			*since = ev.ID
			p.route(ev)
		}
		cancel()
		if err := <-errs; err != nil && ctx.Err() == nil {
			p.log.Warn("troupe event stream ended; resuming", "after", *since, "err", err)
		}
		sleep(ctx, time.Second)
		// A daemon that restarted numbers its events from 1 again, and
		// replays nothing after an id it never reached: the workers look
		// at their containers once the new stream is surely up.
		time.AfterFunc(time.Second, p.resyncAll)
	}
	return ctx.Err()
}

// route hands an event to the worker of the pod it concerns.
func (p *Provider) route(ev api.Event) {
	if ev.Type == api.EventGap {
		p.log.Warn("troupe events lost; looking at every pod again", "missed", ev.Missed)
		p.resyncAll()
		return
	}
	if ev.Type != api.EventExit {
		return
	}
	uid, _, ok := podid.Parse(ev.Container)
	if !ok {
		return
	}
	p.mu.Lock()
	w := p.workers[uid]
	p.mu.Unlock()
	if w != nil {
		w.send(exitMsg{ev})
	}
}

func (p *Provider) resyncAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		w.send(resyncMsg{})
	}
}

// gcInterval is how often the containers of pods no longer bound to the
// node are looked for.
const gcInterval = 30 * time.Second

// CollectGarbage deletes, until ctx ends, the containers (and what else
// they left) of pods that neither the provider runs nor the API server
// binds to the node: pods deleted while the agent was down. Call it once
// the pod informer has synced (virtual-kubelet's node is ready): before,
// every pod would look gone.
func (p *Provider) CollectGarbage(ctx context.Context) {
	t := time.NewTimer(gcInterval / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.collectOnce(ctx); err != nil {
			p.log.Warn("garbage collection", "err", err)
		}
		t.Reset(gcInterval)
	}
}

func (p *Provider) collectOnce(ctx context.Context) error {
	if p.cfg.Pods == nil {
		return nil
	}
	// What is on the node is listed before what should be: a pod that
	// arrives in between (its worker made, its sandbox and volumes with
	// it) is then among the pods that should, not taken for a leftover.
	cs, err := p.cfg.Troupe.List(ctx)
	if err != nil {
		return fmt.Errorf("list troupe containers: %w", err)
	}
	// A pod whose containers went but whose sandbox, address or volumes
	// stayed (the agent died in between) is collected too.
	leftovers, err := p.cfg.Sandboxes.List()
	if err != nil {
		return err
	}
	if p.cfg.Network != nil {
		attached, err := p.cfg.Network.Attached()
		if err != nil {
			return fmt.Errorf("list the pod network's attachments: %w", err)
		}
		leftovers = append(leftovers, attached...)
	}
	if p.cfg.Prepared != nil {
		prepared, err := p.cfg.Prepared()
		if err != nil {
			return fmt.Errorf("list the pods' volumes: %w", err)
		}
		for _, uid := range prepared {
			leftovers = append(leftovers, string(uid))
		}
	}
	pods, err := p.cfg.Pods.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	bound := make(map[types.UID]bool, len(pods))
	for _, pod := range pods {
		bound[pod.UID] = true
	}
	p.mu.Lock()
	for uid := range p.workers {
		bound[uid] = true
	}
	p.mu.Unlock()
	orphans := map[types.UID][]string{}
	for _, c := range cs {
		if uid, _, ok := podid.Parse(c.ID); ok && !bound[uid] {
			orphans[uid] = append(orphans[uid], c.ID)
		}
	}
	for _, uid := range leftovers {
		if u := types.UID(uid); !bound[u] && orphans[u] == nil {
			orphans[u] = []string{}
		}
	}
	var errs []error
	for uid, ids := range orphans {
		p.log.Info("removing the containers of a pod no longer on this node", "uid", uid, "containers", len(ids))
		errs = append(errs, p.removePod(ctx, uid, ids))
	}
	return errors.Join(errs...)
}

// removePod deletes the containers ids of pod uid, then its network
// attachment, its sandbox and what Prepare made.
func (p *Provider) removePod(ctx context.Context, uid types.UID, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := p.cfg.Troupe.Delete(ctx, id, true); err != nil && !errors.Is(err, errclass.NotFound) {
			errs = append(errs, fmt.Errorf("delete %s: %w", id, err))
		}
	}
	sb, ok, err := p.cfg.Sandboxes.Get(string(uid))
	if err != nil {
		errs = append(errs, err)
	}
	if p.cfg.Network != nil {
		// Without its sandbox the pod's namespace is gone, and its veth
		// with it: the address is released all the same.
		netns := ""
		if ok {
			netns = sb.Network
		}
		if err := p.cfg.Network.Del(ctx, string(uid), netns); err != nil {
			errs = append(errs, fmt.Errorf("detach pod %s from the network: %w", uid, err))
		}
	}
	if err := p.cfg.Sandboxes.Remove(string(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := p.cfg.Cleanup(uid); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
