package actors

import (
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
	"github.com/troupe-run/troupe/runtime/image/pull"
)

// command is a request to one container. Each command says which
// container it is for, so that the supervisor routes any of them, and how to
// answer it when it fails before its container's actor could act on it
// (unknown container, a status that forbids it, a container going away), so
// that a refusal has the reply type the sender waits for.
type command interface {
	containerID() string
	failed(err error) any
}

// Commands to the supervisor.

// StartContainer asks the supervisor to create container ID from the bundle
// at BundlePath and start it. The reply is a *StartContainerResult, sent once
// the init runs or the start failed.
type StartContainer struct {
	ID         string
	BundlePath string
	// Checkpoint, when set, restores the container from that checkpoint of
	// its own id ("name") or of another container ("other/name", a clone)
	// instead of starting it fresh. BundlePath may then be empty: the
	// checkpointed container's bundle is used.
	Checkpoint string
	// Pull, with Checkpoint, is whether a restore of a container that ran
	// from an image pulls that image (by the digest the checkpoint names)
	// when the store lacks it: api.PullNever (or empty) or api.PullMissing.
	Pull api.PullPolicy
	// Log bounds the container's log; zero fields mean the runtime's
	// defaults. A start with limits of its own does not claim a warm pool's
	// container (those were made with the defaults).
	Log containerlog.Limits
	// Image, when set, starts the container from an image in the store
	// (Config.Images) instead of BundlePath, which must then be empty.
	Image *ImageStart
	// Stdio, when set, has the daemon keep the init's stdin (Stdin) or
	// give it a terminal (Terminal) for clients to attach to; without a
	// terminal its output still goes to its log. Not with Checkpoint; such
	// a start claims no warm pool's container.
	Stdio *stdio.Options
	// Join puts the container in namespaces of other containers of the
	// daemon, by type: the id of the container whose namespace it joins
	// (a pod's sandbox), or the absolute path of a namespace file (one
	// that starts with "/"). Those containers must run (or be paused); not
	// with Checkpoint; such a start claims no warm pool's container (those
	// have namespaces of their own already).
	Join map[runtime.Namespace]string
}

// ImageStart is a start from an image: which, whether to pull it, and
// what the start changes of what the image says.
type ImageStart struct {
	// Ref is the image's name or digest.
	Ref string
	// Pull is api.PullNever (or empty), api.PullMissing or api.PullAlways.
	Pull      api.PullPolicy
	Overrides imagespec.Overrides
	// Credentials, when set, are a pull's for the image's registry (a
	// pod's imagePullSecrets): used, never stored.
	Credentials *pull.Credentials
}

// StartContainerResult answers StartContainer.
type StartContainerResult struct {
	Container api.Container
	// Queued is how long the start waited for admission; Started is how
	// long the runtime took once admitted.
	Queued, Started time.Duration
	Err             error
}

func (m *StartContainer) containerID() string  { return m.ID }
func (m *StartContainer) failed(err error) any { return &StartContainerResult{Err: err} }

// GetState asks the supervisor for its snapshot of every container; the
// reply is a *GetStateResult. Programs holding a *Supervisor can read
// Supervisor.State instead, without a message.
type GetState struct{}

// GetStateResult answers GetState.
type GetStateResult struct {
	State *State
}

// Commands to one container. Send them to the container's actor
// (Supervisor.ContainerPID) or to the supervisor, which forwards them.

// GetContainer asks for a container's current view; the reply is a
// *GetContainerResult.
type GetContainer struct {
	ID string
}

// GetContainerResult answers GetContainer.
type GetContainerResult struct {
	Container api.Container
	// LogPath is the file holding the init's stdout and stderr, for the
	// daemon to serve; empty before the runtime has made the container.
	LogPath string
	Err     error
}

func (m *GetContainer) containerID() string  { return m.ID }
func (m *GetContainer) failed(err error) any { return &GetContainerResult{Err: err} }

// ExecProcess starts an additional process in a running container; the reply
// is an *ExecProcessResult.
type ExecProcess struct {
	ID      string
	Process runtime.ProcessSpec
	// Stdio, when set, has the daemon keep the process's stdio for
	// clients to attach to (AttachProcess) instead of /dev/null; the
	// spec's own files are then ignored.
	Stdio *stdio.Options
}

// ExecProcessResult answers ExecProcess.
type ExecProcessResult struct {
	Process api.Process
	Err     error
}

func (m *ExecProcess) containerID() string  { return m.ID }
func (m *ExecProcess) failed(err error) any { return &ExecProcessResult{Err: err} }

// AttachProcess asks for the stdio the daemon keeps of process Pid (an
// exec with Stdio); the reply is an *AttachProcessResult, whose Session
// the client then attaches to.
type AttachProcess struct {
	ID  string
	Pid int
}

// AttachProcessResult answers AttachProcess: the Session, or for an init
// whose output goes to its log, the log (InitLog) to follow, with the
// Session of its stdin if it has one.
type AttachProcessResult struct {
	Session *stdio.Session
	InitLog string
	Err     error
}

func (m *AttachProcess) containerID() string  { return m.ID }
func (m *AttachProcess) failed(err error) any { return &AttachProcessResult{Err: err} }

// WaitProcess asks how process Pid (the init's or an exec's) ended; the
// reply is a *WaitProcessResult: the process itself while it runs, to wait
// on, or its exit.
type WaitProcess struct {
	ID  string
	Pid int
}

// WaitProcessResult answers WaitProcess: Process (running) or Exit.
type WaitProcessResult struct {
	Process runtime.Process
	Exit    *runtime.ExitStatus
	Err     error
}

func (m *WaitProcess) containerID() string  { return m.ID }
func (m *WaitProcess) failed(err error) any { return &WaitProcessResult{Err: err} }

// SignalProcess sends Signal to the process Pid (a host pid) of a container;
// the reply is a *SignalProcessResult.
type SignalProcess struct {
	ID     string
	Pid    int
	Signal syscall.Signal
}

// SignalProcessResult answers SignalProcess.
type SignalProcessResult struct {
	Err error
}

func (m *SignalProcess) containerID() string  { return m.ID }
func (m *SignalProcess) failed(err error) any { return &SignalProcessResult{Err: err} }

// SignalContainer sends Signal to a container's init; the reply is a
// *SignalContainerResult.
type SignalContainer struct {
	ID     string
	Signal syscall.Signal
}

// SignalContainerResult answers SignalContainer.
type SignalContainerResult struct {
	Err error
}

func (m *SignalContainer) containerID() string  { return m.ID }
func (m *SignalContainer) failed(err error) any { return &SignalContainerResult{Err: err} }

// PauseContainer freezes every process of a container; pausing a paused
// container succeeds and does nothing. The reply is a *PauseContainerResult.
type PauseContainer struct {
	ID string
}

// PauseContainerResult answers PauseContainer.
type PauseContainerResult struct {
	Container api.Container
	Err       error
}

func (m *PauseContainer) containerID() string  { return m.ID }
func (m *PauseContainer) failed(err error) any { return &PauseContainerResult{Err: err} }

// ResumeContainer thaws a paused container; resuming a running container
// succeeds and does nothing. The reply is a *ResumeContainerResult.
type ResumeContainer struct {
	ID string
}

// ResumeContainerResult answers ResumeContainer.
type ResumeContainerResult struct {
	Container api.Container
	Err       error
}

func (m *ResumeContainer) containerID() string  { return m.ID }
func (m *ResumeContainer) failed(err error) any { return &ResumeContainerResult{Err: err} }

// UpdateResources changes the limits of a running container; the reply is an
// *UpdateResourcesResult.
type UpdateResources struct {
	ID        string
	Resources runtime.Resources
}

// UpdateResourcesResult answers UpdateResources.
type UpdateResourcesResult struct {
	Err error
}

func (m *UpdateResources) containerID() string  { return m.ID }
func (m *UpdateResources) failed(err error) any { return &UpdateResourcesResult{Err: err} }

// GetStats asks for a container's cgroup figures; the reply is a
// *GetStatsResult.
type GetStats struct {
	ID string
}

// GetStatsResult answers GetStats.
type GetStatsResult struct {
	Stats *runtime.Stats
	Err   error
}

func (m *GetStats) containerID() string  { return m.ID }
func (m *GetStats) failed(err error) any { return &GetStatsResult{Err: err} }

// DeleteContainer removes a stopped container and every trace of it; with
// Force a running one is killed first. The reply is a *DeleteContainerResult,
// sent once the id is free again.
type DeleteContainer struct {
	ID    string
	Force bool
}

// DeleteContainerResult answers DeleteContainer.
type DeleteContainerResult struct {
	Err error
}

func (m *DeleteContainer) containerID() string  { return m.ID }
func (m *DeleteContainer) failed(err error) any { return &DeleteContainerResult{Err: err} }

// CheckpointContainer dumps a container with CRIU into checkpoint Name;
// the reply is a *CheckpointContainerResult.
type CheckpointContainer struct {
	ID      string
	Name    string
	Options runtime.CheckpointOptions
}

// CheckpointContainerResult answers CheckpointContainer.
type CheckpointContainerResult struct {
	Checkpoint checkpoint.Checkpoint
	Err        error
}

func (m *CheckpointContainer) containerID() string  { return m.ID }
func (m *CheckpointContainer) failed(err error) any { return &CheckpointContainerResult{Err: err} }

// Commands about checkpoints, to the supervisor, which routes them to the
// checkpoint store's owner: checkpoints outlive their containers, so these
// need no container actor.

// ListCheckpoints asks for the checkpoints of container ID; the reply is a
// *ListCheckpointsResult.
type ListCheckpoints struct {
	ID string
}

// ListCheckpointsResult answers ListCheckpoints.
type ListCheckpointsResult struct {
	Checkpoints []checkpoint.Checkpoint
	Err         error
}

// DeleteCheckpoint removes checkpoint Name of container ID; the reply is a
// *DeleteCheckpointResult.
type DeleteCheckpoint struct {
	ID   string
	Name string
}

// DeleteCheckpointResult answers DeleteCheckpoint.
type DeleteCheckpointResult struct {
	Err error
}

// Events from container actors to the supervisor.

// ContainerChanged carries a container's new view after any change; the
// supervisor puts it in its books, then delivers Reply to ReplyTo (if any):
// the answer to the command that made the change.
type ContainerChanged struct {
	Container api.Container
	ReplyTo   *actor.PID
	Reply     any
}

// ContainerRemoved says a container actor is done for good: the container
// was deleted or never started. The supervisor stops the actor and delivers
// Reply to ReplyTo (if any) once it has stopped, so that a client that gets
// the reply can reuse the id at once.
type ContainerRemoved struct {
	ID      string
	ReplyTo *actor.PID
	Reply   any
}

// Events inside a container actor, from the goroutines doing its blocking
// work. They are unexported: nothing outside the actor sends them.

// processExited reports that one process of the container was reaped.
type processExited struct {
	pid    int
	status runtime.ExitStatus
}

// oomKilled reports that the kernel's OOM killer acted in the container.
type oomKilled struct{}

// containerStartFinished reports the end of the runtime's start (or
// restore), or hands over a container an earlier daemon started (adopted).
type containerStartFinished struct {
	container       runtime.Container
	queued, started time.Duration
	restored        bool
	adopted         bool
	warm            bool           // claimed from a warm pool
	image           string         // the digest of the image it was started from
	stdio           *stdio.Session // the init's, when kept
	err             error
}

// execFinished reports the end of an exec.
type execFinished struct {
	replyTo  *actor.PID
	process  runtime.Process
	stdio    *stdio.Session
	terminal bool
	err      error
}

// pauseFinished reports the end of a pause or resume (pause false).
type pauseFinished struct {
	replyTo *actor.PID
	pause   bool
	err     error
}

// updateFinished reports the end of a resources update.
type updateFinished struct {
	replyTo *actor.PID
	err     error
}

// checkpointFinished reports the end of a checkpoint.
type checkpointFinished struct {
	replyTo    *actor.PID
	checkpoint checkpoint.Checkpoint
	err        error
}

// deleteFinished reports the end of a delete.
type deleteFinished struct {
	replyTo *actor.PID
	err     error
}

// containersFound carries the containers a restarted daemon found in its
// state directory, to the supervisor; it answers with a *GetStateResult once
// its books list them.
type containersFound struct {
	containers []runtime.Container
	errs       []error
}

// Warm pools. A pool keeps Size containers of one bundle prepared ahead
// (runtime.Preparer); a StartContainer of that bundle then claims one
// instead of starting cold, and the pool refills in the background. Send
// these to the supervisor, which routes them to the pools actor.

// SetPool creates pool Name for the bundle, or for the image, or resizes
// it; the reply is a *SetPoolResult. A bundle, or an image with one set of
// overrides, has at most one pool. Supervisor.SetImagePool fills Image.
type SetPool struct {
	Name       string
	BundlePath string
	Image      *ImagePool
	Size       int
}

// ImagePool is what a pool of an image prepares its containers from: the
// image as the store has it, resolved (and pulled, if asked) before the
// pool is made, and the overrides of the starts it serves.
type ImagePool struct {
	Ref       string
	Image     image.Image
	Config    imagespec.Image
	Overrides imagespec.Overrides
}

// SetPoolResult answers SetPool; Created says the pool is new.
type SetPoolResult struct {
	Pool    api.Pool
	Created bool
	Err     error
}

// GetPool asks for one pool; the reply is a *GetPoolResult.
type GetPool struct{ Name string }

// GetPoolResult answers GetPool.
type GetPoolResult struct {
	Pool api.Pool
	Err  error
}

// ListPools asks for every pool, sorted by name; the reply is a
// *ListPoolsResult.
type ListPools struct{}

// ListPoolsResult answers ListPools.
type ListPoolsResult struct{ Pools []api.Pool }

// DeletePool removes a pool and discards its prepared containers; the reply,
// a *DeletePoolResult, comes once they are gone. Containers already claimed
// from it are not affected.
type DeletePool struct{ Name string }

// DeletePoolResult answers DeletePool.
type DeletePoolResult struct{ Err error }
