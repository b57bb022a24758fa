// Package troupetest gives a test a real environment of its own, made and
// removed for it: a directory and a cgroup parent (Sandbox), and on them a
// Linux runtime with a busybox rootfs to build bundles on (Env), onto which
// the test stacks what it tests (a supervisor, an API server). Tests only:
// nothing else imports it.
//
// # A test package's setup
//
// The rootfs is made once per test binary, on first use, and removed after
// m.Run; every Env's bundles share it read-only:
//
//	var shared = troupetest.NewShared("troupe-http-test-")
//
//	func TestMain(m *testing.M) {
//		linux.Init() // this binary is also the containers' init
//		os.Exit(linuxtest.Guarded(func() int {
//			code := m.Run()
//			shared.Remove()
//			return code
//		}))
//	}
//
// # A test's environment
//
// New skips the test when it cannot start real containers (not root), so
// that a package's other tests still run. What the test stacks on the
// runtime stops through OnStop, after the runtime's containers are deleted
// and before the runtime closes; a layer that must stop before the
// containers go (a server whose streams follow them) registers its own
// t.Cleanup after New, which runs first:
//
//	e := shared.New(t, troupetest.Options{Name: "http"})
//	system := e.ActorSystem()
//	sup, err := actors.Spawn(system.Root, actors.Config{Runtime: e.Runtime, Logger: troupetest.QuietLogger()})
//	if err != nil {
//		t.Fatal(err)
//	}
//	e.OnStop(func() { _ = sup.Stop() })
//	bundle := e.Bundle(t, "sleeper", "sleep", "300")
//
// # Import direction
//
// It imports the runtime (runtime/linux and its test helpers), busybox and
// protoactor-go's actor system, never actors/ or http/: the in-package
// tests of actors and of http can both import it without a cycle, each
// spawning its own layers on the Env.
//
// A daemon process (cmd/troupe's end-to-end tests) makes its own runtime:
// such a test takes only a Sandbox for the daemon's directories and cgroup
// parent.
package troupetest
