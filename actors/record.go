package actors

import (
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// record is what a container actor knows. It belongs to the actor alone,
// but it outlives an actor instance: when a panic restarts the actor, the new
// instance takes the record over, so the live processes, their waiters and
// the queued work are never lost (see supervision.go).
type record struct {
	id         string
	bundlePath string
	created    time.Time
	ctr        runtime.Container // nil until started
	status     runtime.Status
	exit       *runtime.ExitStatus
	procs      []runtime.Process // live ones, the init first
	// queue is the runtime work that blocks, run one piece at a time off
	// the mailbox (queue.go).
	queue queue
	// startReply is who waits for the start to finish.
	startReply *actor.PID
	// removing is set once the actor has told the supervisor it is going.
	removing bool
	// restoreFrom and restoreName name the checkpoint to start from, if any.
	restoreFrom, restoreName string
	// restorePull is whether that restore may pull the checkpoint's image.
	restorePull api.PullPolicy
	// warm says that the start claimed a warm pool's prepared container.
	warm bool
	// log bounds the container's log, as its start asked.
	log containerlog.Limits
	// join names the containers (or namespace files) whose namespaces the
	// start joins.
	join map[runtime.Namespace]string
	// fromImage is the start from an image that makes the container, if
	// so; image is the digest of the image it runs from.
	fromImage *ImageStart
	image     string
	// initStdio is what the start asked of the init's stdio, if anything.
	initStdio *stdio.Options
	// oom says the kernel's OOM killer acted in the container.
	oom bool
	// stdio are the streams the daemon keeps of processes, by pid, until
	// their exit was read or the container goes; exits are the last exits
	// of exec'd processes, for WaitProcess (at most keptExits).
	stdio map[int]*stdio.Session
	exits []pidExit
}

// pidExit is how an exec'd process ended.
type pidExit struct {
	pid  int
	exit runtime.ExitStatus
}

// keptExits bounds the exits a container remembers of its exec'd
// processes; keptStreams the streams of exited processes it keeps unread
// (each up to stdio.DefaultBuffer of output).
const (
	keptExits   = 64
	keptStreams = 8
)

// info builds a fresh view of the container, as the API shows it.
func (r *record) info() api.Container {
	status := r.status
	if status == "" {
		status = runtime.Created
	}
	c := api.Container{ID: r.id, BundlePath: r.bundlePath, Image: r.image, Created: r.created, Warm: r.warm,
		State: api.ContainerState{Status: api.Status(status)}, Processes: make([]api.Process, 0, len(r.procs))}
	if r.exit != nil {
		code := r.exit.Code
		c.State.ExitStatus = &code
		c.State.OOMKilled = r.oom && r.exit.Signal == syscall.SIGKILL
	}
	c.Join = r.joinInfo()
	for _, p := range r.procs {
		info := processInfo(p)
		if sess, ok := r.stdio[info.Pid]; ok {
			info.Stdio, info.Terminal = true, sess.Terminal()
		}
		c.Processes = append(c.Processes, info)
	}
	return c
}

// joinInfo is what the container joined: the runtime's record once it
// runs (a container adopted from an earlier daemon has no other), else
// what its start asked.
func (r *record) joinInfo() *api.Join {
	var j api.Join
	set := func(ns runtime.Namespace, value string) {
		switch ns {
		case runtime.NetworkNamespace:
			j.Network = value
		case runtime.IPCNamespace:
			j.IPC = value
		case runtime.UTSNamespace:
			j.UTS = value
		}
	}
	if r.ctr != nil {
		for _, jn := range r.ctr.Joined() {
			set(jn.Namespace, joinValue(jn))
		}
	} else {
		for ns, other := range r.join {
			set(ns, other)
		}
	}
	if j == (api.Join{}) {
		return nil
	}
	return &j
}

// procIndex is the index of process pid in procs, or -1.
func (r *record) procIndex(pid int) int {
	for i, p := range r.procs {
		if p.Pid() == pid {
			return i
		}
	}
	return -1
}
