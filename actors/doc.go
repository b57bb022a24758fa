// Package actors runs troupe's containers as protoactor-go actors: one actor
// per container, owning its lifecycle and its processes, and a supervisor
// that spawns them, routes commands and keeps the books.
//
// # Spawning the supervisor
//
// A program with its own actor system spawns a supervisor in it and talks to
// it through the returned handle or by messages:
//
//	system := actor.NewActorSystem()
//	rt, _ := linux.New(linux.Options{StateDir: "/run/troupe"})
//	sup, err := actors.Spawn(system.Root, actors.Config{Runtime: rt, Adopt: true})
//	res, err := sup.Start(ctx, "web", "/bundles/web")
//	fmt.Println(res.Container.State.Status) // running
//
// The handle's methods (Start, Exec, Signal, Pause, Resume, Update, Stats,
// Delete, Get) send the messages of messages.go and wait for the reply. A
// program may send them itself: StartContainer and GetState to
// [Supervisor.PID]; container commands to [Supervisor.ContainerPID], which
// skips the supervisor, or to the supervisor, which forwards them.
//
// # Reading state
//
// [Supervisor.State] returns an immutable snapshot of every container,
// replaced by the supervisor on each change. Reading it takes no message and
// no lock, so listing thousands of containers never waits behind starts.
//
// # What runs where
//
// No actor blocks its mailbox. The runtime's blocking work (start, exec,
// pause, resume, update, delete) runs in a goroutine, one piece at a time per
// container, and reports back with a message; a container answers queries
// while it starts. One goroutine per process waits for its exit and reports
// it; when the init exits, the container is stopped with its exit status.
// Starts are admitted a few at a time (Config.MaxStarts), in arrival order;
// the time a start waited is reported with it.
//
// # Events
//
// Every lifecycle change is published to an [events.Log] with an increasing
// id: start, exit, exec, process-exit, pause, resume, oom, delete.
//
// # Failures
//
// A container actor that panics is restarted and takes over its container's
// record, so no process or exit is lost (supervision.go says why protoactor's
// default would be wrong here).
package actors
