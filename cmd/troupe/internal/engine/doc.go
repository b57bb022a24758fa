// Package engine holds the troupe-engine binary embedded in troupe and
// runs it from a sealed memfd.
//
// # Why
//
// libcontainer starts a container's init by re-executing /proc/self/exe.
// In the daemon that is the whole daemon (210 package inits per start);
// the engine (cmd/troupe-engine) links only the runtime. troupe still ships
// as one file: the engine is embedded, and written at run time into a
// memfd that is sealed the way libcontainer's exeseal.IsCloned checks
// (F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE, plus F_SEAL_EXEC
// where the kernel has it). In a process executed from it,
// exeseal.IsSelfExeCloned is true, so libcontainer execs /proc/self/exe
// init as it is and copies nothing per start.
//
// # Building
//
// The embedded file exists only in `make build`: it builds
// bin/troupe-engine, then troupe with the build tag "engine" and a
// `go build -overlay` that puts bin/troupe-engine at this package's
// troupe-engine (a path that never exists in the tree; .gitignore names it
// in case someone writes it there). Without the tag (a plain go build, vet
// or test) nothing is embedded and [Open] fails with
// errclass.FailedPrecondition.
//
// # Use
//
//	e, err := engine.Open() // once per daemon start
//	cmd := e.Command(ctx, "selftest", bundle)
//	cmd.ExtraFiles = []*os.File{conn} // fd 3 in the engine
//	done, err := engine.Start(cmd)
//	...
//	err = <-done // cmd.Wait's result
package engine
