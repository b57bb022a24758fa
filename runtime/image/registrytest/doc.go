// Package registrytest starts a real OCI distribution registry (Debian's
// docker-registry, distribution 2.8) on loopback for a test, with its
// storage in the test's temporary directory, and stops it when the test
// ends. Tests of pulling talk to it as to any registry: no fake protocol.
//
//	reg := registrytest.Start(t, registrytest.Config{})
//	ref := reg.Host() + "/demo:latest" // 127.0.0.1:PORT/demo:latest
//
// The registry binary comes from `make deps` (package docker-registry).
// Without it, Start skips the test under a plain go test and fails it when
// TROUPE_REQUIRE_REGISTRY is set, as make test does. The registry is killed
// by its pid in t.Cleanup, and is registered with linuxtest's guard, which
// kills it if the test binary dies, in a run under linuxtest.Guarded.
package registrytest
