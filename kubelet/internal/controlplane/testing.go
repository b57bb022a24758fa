package controlplane

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// RequireEnv names the variable that turns a missing binary from a skip
// into a failure; make kube-test sets it.
const RequireEnv = "TROUPE_REQUIRE_KUBE"

// startTimeout bounds StartTest: a cold start of the API server takes
// seconds, tens of them on a busy two-core machine.
const startTimeout = 2 * time.Minute

// StartTest starts a control plane for t and stops it in t.Cleanup,
// logging the end of each process's log if t failed. When something is
// missing it skips t, or fails it under RequireEnv, naming what.
func StartTest(t testing.TB) *ControlPlane {
	t.Helper()
	var opts Options
	if missing := opts.Missing(); len(missing) > 0 {
		msg := "no Kubernetes control plane: missing " + strings.Join(missing, "; ")
		if os.Getenv(RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; make kube-test provides what is missing and runs the tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cp, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs:\n%s", cp.Logs())
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	return cp
}
