// Package runtime is troupe's seam to the kernel: the small interfaces the
// actors program against, the types they exchange, and the error classes every
// layer shares.
//
// # The seam
//
// A [Runtime] starts containers from OCI bundles and finds the ones that
// already exist. A [Container] handles its own actions: exec, signal, pause,
// resume, stats, resource updates, OOM notification, delete. A [Process] is one
// live process of a container; the runtime is the single owner of wait(2) for
// every process it starts and fans the exit out through [Process.Done],
// [Process.Wait] and [Process.OnExit], so callers never race each other for
// an exit status. OnExit is how to watch many processes: a callback that
// hands the status on (an actor message) instead of a goroutine blocked in
// Wait per process. [Container.OnOOM] does the same for OOM kills, and
// reports the OOM kill of a process before that process's exit, so that
// one callback of each is all a caller needs to tell why a container
// stopped.
//
// The Linux implementation lives in package linux (runc's libcontainer,
// in-process). Tests of the layers above may use an in-memory implementation,
// but every capability also has a test on real containers.
//
// # Joining another container's namespaces
//
// [StartOptions.Join] names namespaces (network, IPC, UTS) of other
// containers of the same runtime for a start to enter instead of making its
// own, each with the init pid the caller knows from its books. The runtime
// joins a namespace only through that container's init: it checks the pid
// against its own record of the container (and the process's start time)
// before the start, and again once the new init has entered the
// namespaces, so a pid the kernel handed to another process is never
// joined.
//
// A join may name a namespace file instead ([Join.Path]): a /proc/PID/ns
// link or a bind mount of one, as a pod manager that pins a pod's
// namespaces itself makes. The runtime checks right before the start that
// the file is a namespace of the type named (on nsfs, and of that type by
// the kernel's word) and joins it by that path; the namespace is its
// owner's.
//
// # Errors
//
// Every error wraps one class ([errclass.NotFound], [errclass.AlreadyExists],
// [errclass.InvalidArgument], [errclass.FailedPrecondition], [errclass.Unavailable]) and carries
// context naming the container, process or file involved:
//
//	if errors.Is(err, errclass.NotFound) { ... }
//
// # Ids
//
// Container ids and checkpoint names match [ValidID]; they become paths on disk
// and actor names, so they are checked before anything else.
package runtime
