// Package fake is an in-memory runtime.Runtime for fast protocol tests of
// the layers above the runtime (actors, HTTP): no kernel, no root, no disk
// unless asked. It behaves like package linux wherever a caller can tell:
// the same checks in the same order, the same error classes with the same
// context, the same state transitions, and processes that end only when
// something ends them.
//
// # Starting
//
// A [Runtime] from [New] starts containers whose init "runs" until it is
// signalled, a test makes it exit, or the container is deleted with force.
// Start checks the id with runtime.ValidID and takes a bundle path as valid
// when it is absolute and not listed in [Options.BadBundles]; it never reads
// the bundle. Pids are fake host pids counting up from [DefaultFirstPid],
// never reused.
//
//	rt := fake.New(fake.Options{})
//	c, err := rt.Start(ctx, "web", runtime.StartOptions{BundlePath: "/bundles/web"})
//
// Load returns the same object Start returned (so the init's exit status
// stays known, unlike a real container re-adopted after a daemon restart);
// List returns the ids sorted. [Runtime.Lookup] gives the concrete
// [*Container] of a container started through a layer above.
//
// # Ending processes
//
// SIGKILL always kills; SIGTERM, SIGINT, SIGHUP and SIGQUIT kill unless the
// process is an init and [Options.InitIgnores] lists the signal (a real pid
// namespace init ignores every signal it has no handler for, bar SIGKILL);
// other signals are delivered without effect. A test ends a process with a
// code of its choice with [Container.Exit], or plays the OOM killer with
// [Container.OOMKill]:
//
//	c := rt.Lookup("web")
//	c.Exit(c.Init().Pid(), 3) // the init exits with code 3
//	c.OOMKill(p.Pid())        // notify, then SIGKILL p
//
// When the init ends, every exec'd process is killed with SIGKILL, as in a
// pid namespace. Their Done channels close before the init's, because the
// kernel reaps the namespace before the init's exit completes: once the
// init's Done is closed, every process of the container is done.
//
// OnExit callbacks run on a goroutine of their own once Done is closed,
// outside the container's lock, as the real runtime runs them off the
// caller's goroutine: a callback may look at the container. OnOOM
// callbacks run inside OOMKill, outside the lock and before the victim is
// killed, so that, as in the real runtime, an OOM kill is reported before
// the victim's exit.
//
// # Freezing
//
// Pause and Resume follow libcontainer: pausing a paused or stopped
// container and resuming one that is not paused fail with
// errclass.FailedPrecondition, as does Exec into anything but a running
// container. By default the fake models a cgroup v1 host, where a frozen
// process does not die even of SIGKILL until it is thawed: a fatal signal to
// a paused container takes effect on Resume (or on a forced Delete, which
// thaws). [Options.Unified] models cgroup v2 instead: fatal signals kill
// frozen processes at once, and OnOOM callbacks are no longer called once the
// container stops rather than once it is deleted. Callers must cope with
// both.
//
// # Testing admission and failures
//
// [Options.Gate] holds every Start (after its id is reserved) until the
// test sends on or closes the channel; [Runtime.InFlight],
// [Runtime.MaxInFlight] and [Runtime.StartCalls] count what an admission
// limit let through:
//
//	gate := make(chan struct{})
//	rt := fake.New(fake.Options{Gate: gate})
//	// ... issue 10 starts through the layer under test ...
//	// wait until rt.InFlight() == limit, check it stays there, then:
//	close(gate)
//
// [Options.StartDelay] slows every start; [Options.StartErr] and
// [Options.ExecErr] inject failures; [Options.AfterStart] and
// [Options.AfterExec] see each new container and process before the caller
// does, for races such as an init that exits before Start returns.
// [Container.Signals] records what the layer above sent.
//
// All types are safe for concurrent use; the package keeps no global state,
// so each test builds its own Runtime.
package fake
