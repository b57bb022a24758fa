package provider

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// publish makes the pod's status from the worker's state and, when it
// changed, hands it to virtual-kubelet.
func (w *worker) publish() {
	pod := w.podWithStatus()
	w.mu.Lock()
	same := w.snap != nil && equality.Semantic.DeepEqual(w.snap.Status, pod.Status)
	w.snap = pod
	w.mu.Unlock()
	if !same {
		w.p.published(pod.DeepCopy())
	}
	if pod.Status.Phase == corev1.PodRunning {
		w.logStages()
	}
}

// podWithStatus is the pod with the status the worker's state says.
func (w *worker) podWithStatus() *corev1.Pod {
	pod := w.pod.DeepCopy()
	st := &pod.Status
	st.HostIP = w.p.cfg.NodeIP
	if w.p.cfg.NodeIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: w.p.cfg.NodeIP}}
	}
	st.PodIP, st.PodIPs = "", nil
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	start := w.startTime
	st.StartTime = &start
	st.InitContainerStatuses = w.statuses(w.inits)
	st.ContainerStatuses = w.statuses(w.apps)
	st.Phase = w.phase()
	st.Reason, st.Message = "", ""

	initialized := true
	for _, x := range w.inits {
		if x.ended == nil || x.ended.ExitCode != 0 {
			initialized = false
		}
	}
	ready := initialized && len(w.apps) > 0
	for _, x := range w.apps {
		if !x.cur.running() {
			ready = false
		}
	}
	sandboxReady := w.sandbox != nil && (w.p.cfg.Network == nil || w.ip.IsValid())
	setupMsg := ""
	if w.setupErr != nil {
		setupMsg = w.setupErr.Error()
	}
	st.Conditions = []corev1.PodCondition{
		w.condition(corev1.PodScheduled, true, ""),
		w.condition(corev1.PodReadyToStartContainers, sandboxReady, setupMsg),
		w.condition(corev1.PodInitialized, initialized, ""),
		w.condition(corev1.ContainersReady, ready, ""),
		w.condition(corev1.PodReady, ready, ""),
	}
	return pod
}

// condition returns the condition, its transition time kept from the last
// status while its value stays: a status that does not change is not sent
// again.
func (w *worker) condition(t corev1.PodConditionType, ok bool, msg string) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	c, seen := w.conditions[t]
	if !seen || c.Status != status {
		c = corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second))}
	}
	c.Message = msg
	w.conditions[t] = c
	return c
}

func (w *worker) statuses(xs []*ctr) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(xs))
	for _, x := range xs {
		cs := corev1.ContainerStatus{
			Name: x.spec.Name, Image: x.spec.Image, ImageID: x.imageID,
			RestartCount: x.restarts, Ready: x.cur.running(),
		}
		started := x.cur.running()
		cs.Started = &started
		if x.started {
			cs.ContainerID = "troupe://" + x.id
		}
		switch {
		case x.cur.running():
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(x.cur.started)}
		case x.ended != nil && (x.waiting == nil || x.waiting.Reason != "CrashLoopBackOff"):
			cs.State.Terminated = x.ended.DeepCopy()
		default:
			waiting := corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			if x.waiting != nil {
				waiting = *x.waiting
			}
			if w.setupErr != nil {
				waiting.Message = w.setupErr.Error()
			}
			cs.State.Waiting = &waiting
		}
		last := x.last
		if cs.State.Waiting != nil && x.ended != nil {
			last = x.ended
		}
		if last != nil {
			cs.LastTerminationState.Terminated = last.DeepCopy()
		}
		out = append(out, cs)
	}
	return out
}

// phase is the pod's phase as the kubelet reckons it.
func (w *worker) phase() corev1.PodPhase {
	for _, x := range w.inits {
		switch {
		case x.ended != nil && x.ended.ExitCode == 0:
		case x.ended != nil && !w.mayRestart(x):
			return corev1.PodFailed
		default:
			return corev1.PodPending
		}
	}
	if len(w.apps) == 0 {
		return corev1.PodPending
	}
	allDone, failed, running := true, false, false
	for _, x := range w.apps {
		switch {
		case x.cur.running():
			running, allDone = true, false
		case x.ended != nil && !w.mayRestart(x):
			failed = failed || x.ended.ExitCode != 0
		case x.started:
			running, allDone = true, false // restarting
		default:
			allDone = false
		}
	}
	switch {
	case allDone && failed:
		return corev1.PodFailed
	case allDone:
		return corev1.PodSucceeded
	case running:
		return corev1.PodRunning
	}
	return corev1.PodPending
}
