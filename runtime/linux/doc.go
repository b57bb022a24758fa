// Package linux implements troupe's runtime on Linux with runc's libcontainer,
// in-process: no runc binary and no shim per container.
//
// # The binary is the container init
//
// libcontainer starts a container by re-executing the current binary with the
// argument "init". Every binary that uses this package (the daemon, and each
// test binary that starts containers) must therefore call [Init] first thing
// in main or TestMain:
//
//	func main() {
//		linux.Init() // returns only when this is not a container init
//		...
//	}
//
// This package blank-imports libcontainer's nsenter (its C constructor must
// run before the Go runtime starts in the init) and the cgroup device
// manager (without it every start fails: "cgroup manager is not configured to
// set device rules").
//
// # Layout on disk
//
// Under the state directory given to [New]: libcontainer's per-container
// state in containers/<id>/ (with troupe's own troupe.json beside it); the
// init's stdout and stderr in <LogDir>/<id>.log, bounded and rotated
// (package containerlog). The init writes into two pipes that the daemon
// copies into that log, and holds their read ends itself as fds 3 and 4
// (logs.go says why: checkpoints, and daemon restarts). Cgroups are created at
// <CgroupParent>/<id> in every hierarchy, never where a bundle asks, so that
// delete can remove every trace. A prepared container (warm.go) is made under
// a name of its own, +warm-<hex>, for its state dir, log and cgroups, and
// keeps it when claimed: containers/<id> is then a symlink to its state dir.
//
// # Waiting
//
// The runtime is the only caller of wait(2) for the processes it starts: a
// pidfd of each is watched by the runtime's reactor (reactor.go) from the
// moment it runs, and reaped as soon as it exits. That is also
// what lets a container's init die: an init killed while exec'd processes
// live stays in the kernel's zap_pid_ns_processes until their parent (the
// daemon) reaps them. The reap itself runs on a goroutine that lives for that
// moment, and then calls the process's OnExit callbacks: watching a running
// process costs no goroutine.
//
// # OOM kills
//
// Each container has at most one OOM watch (oom.go), on the reactor too: a
// cgroup v1 eventfd registered through cgroup.event_control, or on cgroup
// v2 an inotify descriptor on memory.events. It reports the kernel's count
// of OOM kills to every OnOOM callback, and the reap
// of a process of the container reads that count before it reports the
// exit, which is what puts an OOM kill before the exit it caused.
package linux
