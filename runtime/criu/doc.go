// Package criu decides whether a CRIU binary can checkpoint and restore on
// this machine, and keeps every run of CRIU within a deadline.
//
// # A verdict by doing, not by asking
//
// `criu check` and a version number are no verdict: on kernel 6.18 Debian's
// CRIU 4.1.1 says "Looks good" and then hangs on every dump, after it has
// frozen and ptrace-seized the tasks. [SelfTest] therefore dumps and restores
// a small process tree that keeps forking (a shell loop forking a child every
// 50 ms, in its own pid and network namespaces as a container's would be),
// under a deadline, and [Check] runs it in the background so that a daemon
// serves at once and answers checkpoint requests only once CRIU proved itself.
//
// # Bounded runs
//
// libcontainer runs CRIU itself ("criu swrk", found on PATH) and gives it no
// deadline. [Bound] runs such a call on an OS thread of its own: the CRIU
// processes it starts are that thread's children, so on the deadline exactly
// they (and whatever they forked) are killed, without a guess about which
// CRIU serves which container. A killed CRIU releases the tasks it had
// seized; what is left to do for the container (thaw its freezer, drop the
// half-written images) is the caller's, since only it knows what it had.
package criu
