package linux

import (
	"os"

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
// (os.Args[1] == "init"), and never returns in that case. Otherwise it returns
// at once. Call it before anything else in main and in TestMain.
func Init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		libcontainer.Init()
	}
}
