package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/exeseal"
)

// helperEnv makes the test binary, run from a memfd, report what it is
// instead of running the tests.
const helperEnv = "TROUPE_ENGINE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		exe, _ := os.Readlink("/proc/self/exe")
		extra := "none"
		if target, err := os.Readlink("/proc/self/fd/3"); err == nil {
			extra = target
		}
		fmt.Printf("exe=%s cloned=%t fd3=%s\n", exe, exeseal.IsSelfExeCloned(), extra)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOpenNotEmbedded: a build without the tag says so.
func TestOpenNotEmbedded(t *testing.T) {
	if Embedded() {
		t.Skip("this build embeds the engine")
	}
	if _, err := Open(); err == nil {
		t.Fatal("Open without an embedded engine: no error")
	}
}

// TestRunFromSealedMemfd runs a copy of this test binary from a memfd the
// way the engine runs: it must see itself as libcontainer's sealed clone,
// and get its extra files from fd 3 on even when the memfd's own fd
// number is among them.
func TestRunFromSealedMemfd(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	e, err := open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	extra, err := os.CreateTemp(t.TempDir(), "extra")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()

	// With as many extra files as reach the memfd's fd number, Go puts
	// one of them at that number in the child before it execs.
	for _, n := range []int{1, max(1, int(e.file.Fd())-2)} {
		t.Run(fmt.Sprintf("%d-extra-files", n), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := e.Command(ctx)
			// No second of the race detector's at exit.
			cmd.Env = append(os.Environ(), helperEnv+"=1", "GORACE=atexit_sleep_ms=0")
			for range n {
				cmd.ExtraFiles = append(cmd.ExtraFiles, extra)
			}
			var out strings.Builder
			cmd.Stdout = &out
			done, err := Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("helper: %v: %s", err, out.String())
			}
			got := strings.TrimSpace(out.String())
			want := fmt.Sprintf("exe=/memfd:runc_cloned:%s (deleted) cloned=true fd3=%s", Name, extra.Name())
			if got != want {
				t.Errorf("helper says %q, want %q", got, want)
			}
		})
	}
}
