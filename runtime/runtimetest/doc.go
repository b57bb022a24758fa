// Package runtimetest is a conformance suite for implementations of
// runtime.Runtime: the observable behaviour that package linux has and that
// package fake claims to share with it. Each implementation's tests run it
// with a Harness that makes a fresh runtime and bundles per case:
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, runtimetest.Harness{
//			New: func(t *testing.T) runtimetest.Env {
//				return runtimetest.Env{Runtime: rt, Bundle: good, BadBundle: bad}
//			},
//		})
//	}
//
// # What it checks
//
// Every case is a subtest of Run, so one can be run alone
// (-run 'TestConformance/exec_exit_code'): a start gives a running
// container that List and Load find; Processes lists the init first; an
// exec'd process's exit code; signals end processes with 128+signal; pause
// and resume; stats; resource updates and their checks; delete; the error
// classes of a duplicate id, an unknown id, an invalid id and a bad bundle;
// exec and signal after the init has gone; that OnExit, Wait and Done
// tell the same exit; and that OnOOM reports each OOM kill once, an OOM
// kill of the init before its exit, and fails after delete.
//
// # OOM kills
//
// The suite limits a container's memory and execs a memory hog, which the
// kernel's OOM killer kills; or it fills the container's /dev/shm and has
// the OOM killer kill the init, made its choice through oom_score_adj. The
// suite must then run as root on the host. An implementation that only
// plays the kernel (the fake) sets Harness.OOMKill.
//
// # Processes that do not run anything
//
// The suite execs `sh -c "exit N"` and expects the process to exit with N.
// An implementation whose processes run nothing (the fake) sets
// Harness.Exit, which the suite calls to make such a process exit.
// A case an implementation cannot pass is listed in Harness.Skip with the
// reason, and reported as skipped.
package runtimetest
