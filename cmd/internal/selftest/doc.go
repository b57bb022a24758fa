// Package selftest starts containers with package linux (libcontainer)
// from the process it runs in and reports what the kernel shows of them:
// which binary this process and a container's init run, whether
// libcontainer will use this process's executable as it is (a sealed
// memfd) or copy it per start, how many packages the binary initialises,
// and what a start and delete cost.
//
// It is shared by the engine (troupe-engine selftest), whose executable is
// a sealed memfd, and by `troupe engine-check --in-process`, which runs the
// same steps in the daemon's binary: the same code on both sides is what
// makes their figures comparable.
//
// # Imports
//
// The engine links this package, and every package linked into the engine
// runs its init in every container start (the engine is each container's
// init). Import only the standard library, package linux and what
// libcontainer links anyway.
//
// # Output
//
// One "key: value" line per finding, in this order:
//
//	self-exe: /memfd:runc_cloned:troupe-engine (deleted)
//	self-exe-cloned: true
//	init-exe: /memfd:runc_cloned:troupe-engine (deleted)
//	package-inits: 78 (0.48 ms, median of 5 runs)
//	starts: 50, wall median 11.2 ms, cpu per start 14.1 ms
package selftest
