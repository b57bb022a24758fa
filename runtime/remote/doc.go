// Package remote carries the runtime seam (runtime.Runtime,
// runtime.Container, runtime.Process, runtime.Preparer, runtime.Prepared)
// over one unix socket: [Serve] is the engine's end, over the real runtime,
// and [Client] the daemon's end, which implements the seam.
//
// # Why
//
// libcontainer starts a container by re-executing the current binary as the
// container's init: with runtime/linux in the daemon, that is the whole
// daemon, every package init of it, in every start. The code that calls
// libcontainer therefore runs in a small engine process, executed from a
// slim binary, and the daemon drives it through this package. The actors
// see a runtime.Runtime as before. This package is linked into the engine,
// so into every container's init too: it uses the standard library's
// encoding/json and no registry of types, and its package initialisation
// is nearly free.
//
//	// The engine, on its end of a socketpair the daemon gave it:
//	err := remote.Serve(ctx, conn, rt) // rt is a *linux.Runtime
//
//	// The daemon:
//	cl := remote.NewClient(conn)
//	c, err := cl.Start(ctx, "web", runtime.StartOptions{BundlePath: b})
//
// # Framing
//
// A frame is a 4-byte big-endian length and that many bytes of JSON, one
// object with a kind ("k"). Descriptors travel as SCM_RIGHTS ancillary
// data sent with the frame's first byte; the frame counts them ("fds"),
// and the receiver, which queues descriptors as they come, takes that many
// from the front of its queue once the frame is whole.
//
// # Messages
//
//   - call (client → engine): a call numbered by the client ("id"), an
//     operation ("op": start, check, load, list, prepare, stale, claim,
//     discard, reconcile, remove-prepared, log-dropped, and the container's
//     exec, signal, processes, status, pause, resume, stats, update, onoom,
//     checkpoint, delete) and its arguments. The context's deadline
//     travels with it ("dl", Unix nanoseconds): the engine runs the call
//     under a context with that deadline. An exec's Stdin, Stdout and
//     Stderr are sent as descriptors, "stdio" saying which they are; the
//     engine closes its copies once the exec has returned.
//   - cancel (client → engine): the caller's context was canceled; the
//     engine cancels that call's context. The client still waits for the
//     answer, as a caller of the runtime in-process would: a canceled start
//     has removed what it made by then.
//   - reply (engine → client): the call's answer: a result, or an error as
//     its message and the names of the sentinels it matched with errors.Is
//     (the five classes of errclass, context.DeadlineExceeded,
//     context.Canceled, criu.ErrStuck). The client's error has the same
//     message and matches the same sentinels. Many calls are in flight at
//     once; replies come in any order.
//   - exit and oom (engine → client): a process has exited (with its exit
//     status), an OOM kill happened in a container. The engine registers
//     one OnExit per process it hands out, after the reply that names it, and
//     one OnOOM per container the first time the client asks for one; the
//     client calls its own callbacks on its reader goroutine, in the order
//     the frames came, which is the order the runtime called the engine's:
//     an OOM kill still comes before the exit it caused. The client keeps
//     the status, so Done, Wait and an OnExit registered late agree.
//
// Objects are named by handles the engine gives out: a container's (one
// per Start, Load or Claim, as each returns an object of its own), a
// process's (in its exit frame; a container's calls name processes by
// pid), a prepared container's. The engine forgets a container's handle
// once it is deleted (a second Delete succeeds on the client, any other
// call then fails with errclass.NotFound), a prepared one's once claimed
// or discarded. Neither end has a goroutine per container or process: the
// engine has a reader, a writer and one goroutine per call in flight; the
// client a reader.
//
// # When the engine dies
//
// The connection is then gone: every call in flight and every later call
// fails with an errclass.Unavailable error that names the engine, the
// client's Done is closed and Err says why, and a Wait on a process returns
// that error. OnExit and OnOOM callbacks are not called any more: the
// containers are still running (they outlive their engine as they outlive
// a daemon), and a new engine's client re-adopts them with Load. The
// objects of the old client stay unusable. A Serve whose connection closes
// cancels the calls in flight and returns; what they started stays, and a
// canceled start removes what it made.
package remote
