package linux

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// TestStartIgnoresWhatIsPlantedAtItsLog: a start empties its container's
// log. Whatever was found at the log's path (a symlink or a hard link to
// another file, a FIFO) must not make it truncate or write another file,
// nor block the start: the daemon runs as root.
func TestStartIgnoresWhatIsPlantedAtItsLog(t *testing.T) {
	const precious = "not the daemon's to truncate\n"
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, log, victim string)
	}{
		{"symlink", func(t *testing.T, log, victim string) {
			if err := os.Symlink(victim, log); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, log, victim string) {
			if err := os.Remove(victim); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, log); err != nil {
				t.Fatal(err)
			}
		}},
		{"hard link", func(t *testing.T, log, victim string) {
			if err := os.Link(victim, log); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo", func(t *testing.T, log, _ string) {
			if err := unix.Mkfifo(log, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			victim := filepath.Join(e.dir, "victim")
			if err := os.WriteFile(victim, []byte(precious), 0o644); err != nil {
				t.Fatal(err)
			}
			id := "planted"
			log := filepath.Join(e.rt.logRoot, id+".log")
			tc.plant(t, log, victim)
			b := e.bundle(id, busybox.Options{Args: []string{"sh", "-c", "echo hello; sleep 300"}})

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			type result struct {
				c   runtime.Container
				err error
			}
			done := make(chan result, 1)
			go func() {
				c, err := e.rt.Start(ctx, id, runtime.StartOptions{BundlePath: b})
				done <- result{c, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the start blocked on what was planted at its log")
			}
			if r.err == nil {
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
					defer cancel()
					_ = r.c.Delete(ctx, true)
				})
			}
			if data, err := os.ReadFile(victim); tc.name != "dangling symlink" && (err != nil || string(data) != precious) {
				t.Errorf("the start changed the file planted at its log: %q, %v", data, err)
			}
			if _, err := os.Stat(victim); tc.name == "dangling symlink" && !os.IsNotExist(err) {
				t.Errorf("the start made the file a dangling link at its log pointed to: %v", err)
			}
			if r.err != nil {
				t.Fatalf("start: %v", r.err)
			}
			fi, err := os.Lstat(log)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("log %s: %v, %v; want a regular file of its own", log, fi, err)
			}
			testutil.Eventually(t, "the container's output in its log", func() bool {
				data, _ := os.ReadFile(log)
				return len(data) > 0
			})
		})
	}
}
