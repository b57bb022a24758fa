// Package actors runs troupe's containers as protoactor-go actors: one actor
// per container, owning its lifecycle and its processes, under a supervisor
// that spawns them, routes commands and keeps the books; beside it, an
// actor that manages the warm pools and one that owns the checkpoint store.
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
// Delete, Get, the pools' and the checkpoints') send the messages of
// messages.go and wait for the reply. A program may send them itself, all
// to [Supervisor.PID], which forwards them; container commands may also go
// straight to [Supervisor.ContainerPID].
//
// # Where things are
//
//	supervisor.go        the handle: Config, Spawn, the blocking methods
//	supervisor_actor.go  the supervisor actor: the books and the routing
//	messages.go          every message; each container command with its
//	                     containerID and failed methods
//	container_actor.go   the container actor: what every status handles
//	behaviours.go        what each status allows, each command in one place
//	record.go            what a container actor knows, kept across restarts
//	queue.go             its blocking runtime work, one piece at a time
//	lifecycle.go, processes.go, pause.go, resources.go, checkpoint.go,
//	delete.go            the operations
//	watch.go             the runtime's exit and OOM callbacks, as messages
//	checkpoint_store.go  the checkpoint store's owner and its leases
//	pools.go, pool.go    the pools actor, and one actor per warm pool
//	deps.go, state.go, admission.go, supervision.go
//
// # Adding a container command
//
// Declare its message and its reply in messages.go, with the two methods of
// command next to them: containerID (the supervisor routes it by that) and
// failed (the reply when it fails before its actor acts: an unknown
// container, a status that forbids it, a container going away). Then
// handle it in the one behaviour of behaviours.go where it becomes allowed,
// calling an operation in the file it belongs to; blocking work goes
// through enqueue and reports back with a message of its own. A Supervisor
// method that sends it is optional.
//
// # Reading state
//
// [Supervisor.State] returns an immutable snapshot of every container,
// replaced by the supervisor on each change. Reading it takes no message and
// no lock, so listing thousands of containers never waits behind starts. A
// reply to a command that changed a container goes through the supervisor
// after the snapshot: a client that got it reads its own change.
//
// # What runs where
//
// No actor blocks its mailbox. The runtime's blocking work (start, exec,
// pause, resume, update, checkpoint, delete) runs in a goroutine, one piece
// at a time per container, and reports back with a message; a container
// answers queries while it starts. The runtime calls back on each process's
// exit and each OOM kill, and the callback only sends the container's actor
// a message (watch.go): no goroutine waits per container or per process.
// When the init exits, the container is stopped with its exit status. Starts are admitted a few at a time
// (Config.MaxStarts), in arrival order; the time a start waited is reported
// with it.
//
// # Pods
//
// A start with Join (StartContainer.Join) puts its container in namespaces
// of other containers. Its actor asks each of those containers' actors, via
// the supervisor, for its view: the init pid comes from that record, never
// from /proc, and a container that does not run (or is still starting) is
// refused. The runtime checks again, as its init enters the namespaces,
// that the pid is still that container's init. A join may name a namespace
// file by its path instead (a pod's namespaces pinned by bind mounts): no
// actor is asked, and the runtime checks the file right before the start.
// Such a start claims no warm pool's container.
//
// # Checkpoints
//
// The checkpoint store has one owner, an actor. Listing and deleting are its
// commands; a dump, a restore, an export and an import each take a lease
// from it and do their work outside any mailbox (an export streams for as
// long as its client reads). Reads (export, restore) share a checkpoint;
// a write (dump, import) or a delete has it alone, and a use that conflicts
// is refused at once: deleting a checkpoint being exported answers
// errclass.FailedPrecondition, and can be tried again when the export is done.
//
// # Events
//
// Every lifecycle change is published to an [events.Log] with an increasing
// id: start (or restore), exit, exec, process-exit, pause, resume, oom,
// checkpoint, delete.
//
// # Failures
//
// A container actor that panics is restarted and takes over its container's
// record, so no process or exit is lost (supervision.go says why protoactor's
// default would be wrong here). The tests make an actor panic with a runtime
// whose containers panic when signalled (crash_test.go).
package actors
