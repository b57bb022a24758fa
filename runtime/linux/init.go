package linux

import (
	"os"
	goruntime "runtime"

	"github.com/opencontainers/runc/libcontainer"
	// Required: nsenter's C constructor sets up namespaces in the init
	// before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	// Required: the cgroup manager cannot set device rules without it.
	_ "github.com/opencontainers/cgroups/devices"
)

// InitArg is the argument with which libcontainer re-executes the binary as
// a container's init.
const InitArg = "init"

// Init turns this process into a container's init when it was started as one
// (os.Args[1] == "init"), and never returns in that case. Otherwise it locks
// the calling goroutine to its thread for good and returns. Call it before
// anything else in main and in TestMain, on the main goroutine.
//
// Why the lock: every container start runs libcontainer's mount-source
// goroutine, which locks its thread, joins the container's mount namespace
// and returns without unlocking, so that Go ends that thread with it. Go
// cannot end the main thread (the thread group leader): when the goroutine
// happened to run there, the main thread is parked in the container's mount
// namespace for the rest of the process's life. /proc/<pid>/root and
// /proc/<pid>/mountinfo then show the container's tree, and the namespace
// (with whatever its tmpfs holds) outlives the container. With the main
// goroutine locked to the main thread no other goroutine ever runs there.
// runtime.main runs package initialisation on the main thread and calls main
// right after, so the first thing main does is still on it.
func Init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		libcontainer.Init()
	}
	goruntime.LockOSThread()
}
