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

// Init makes this process a container's init when it was started as one
// (os.Args[1] == "init"), and otherwise keeps the main goroutine on the main
// thread for good. The package's initialisation does both, before main: Init
// itself returns at once; main and TestMain call it first thing all the
// same, which says that they depend on it.
//
// Why there: runtime.main runs package initialisation on the main thread
// (the thread group leader), with the main goroutine locked to it, and a
// lock taken then holds into main. main itself may already run elsewhere.
//
// Why an init must run on the main thread: it ends with an execve of the
// container's command, and an execve from another thread makes the main
// thread a zombie until the exec takes over its pid. On a cgroup v1 host
// that wait is for the read side of cgroup_threadgroup_rwsem, behind the
// cgroup moves of every concurrent start: over a second in a burst of 50
// starts on two loaded cores. Meanwhile the init's /proc/<pid>/ns are gone,
// so an exec into the container fails (1 in 1250 execs right after such
// starts), and libcontainer calls the container stopped.
//
// Why the daemon's main goroutine is locked: every container start runs
// libcontainer's mount-source goroutine, which locks its thread, joins the
// container's mount namespace and returns without unlocking, so that Go
// ends that thread with it. Go cannot end the main thread: when the
// goroutine happened to run there, the main thread is parked in the
// container's mount namespace for the rest of the process's life.
// /proc/<pid>/root and /proc/<pid>/mountinfo then show the container's
// tree, and the namespace (with whatever its tmpfs holds) outlives the
// container. With the main goroutine locked to the main thread no other
// goroutine ever runs there.
func Init() {}

func init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		libcontainer.Init()
	}
	goruntime.LockOSThread()
}
