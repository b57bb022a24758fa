// Package testutil holds helpers that the tests of every package share. It
// imports only the standard library (testing included), so any package's
// tests may use it without pulling in containers, actors or HTTP.
//
// # Waiting for a condition
//
// A test that must wait for something to happen waits for the condition,
// with a deadline, rather than sleeping for a guess of how long it takes:
//
//	testutil.Eventually(t, 10*time.Second, func() bool {
//		return rt.len() == 0
//	}, "every descriptor to be released")
//
// On timeout the test fails with "timed out after 10s waiting for every
// descriptor to be released".
package testutil
