package linux

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// counterArgs count in a file inside the container, so that its memory
// (the shell variable) is what a restore must bring back.
var counterArgs = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; echo tick $i; usleep 50000; done"}

func readCount(t *testing.T, c runtime.Container) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.Init().Pid()), "root/tmp/count"))
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

func TestCheckpointRestore(t *testing.T) {
	linuxtest.RequireCriu(t)
	e := newEnv(t)
	c := e.start("orig", busybox.Options{Args: counterArgs})
	testutil.Eventually(t, "the counter to pass 10", func() bool { return readCount(t, c) > 10 })
	dir := filepath.Join(e.dir, "cp1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(context.Background(), dir, runtime.CheckpointOptions{}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	at := readCount(t, c)
	if s, _ := c.Status(); s != runtime.Running {
		t.Fatalf("after a checkpoint without exit the container is %s", s)
	}
	clone, err := e.rt.Start(context.Background(), "clone", runtime.StartOptions{
		BundlePath: filepath.Join(e.dir, "bundles", "orig"), Restore: &runtime.RestoreOptions{ImagesDir: dir}})
	if err != nil {
		data, _ := os.ReadFile(filepath.Join(e.dir, "state", "logs", "clone.log"))
		t.Fatalf("restore: %v (clone log %q)", err, data)
	}
	t.Cleanup(func() { _ = clone.Delete(context.Background(), true) })
	n := readCount(t, clone)
	if n < 10 || n > at+40 {
		t.Errorf("the clone counts from %d; the original was at %d when dumped", n, at)
	}
	testutil.Eventually(t, "the clone to count on", func() bool { return readCount(t, clone) > n })
	// The clone's output goes to its own log, not the original's.
	testutil.Eventually(t, "the clone's output in its log", func() bool {
		data, _ := os.ReadFile(clone.LogPath())
		return strings.Contains(string(data), "tick")
	})
	// And it holds the read ends of its own output pipes, so it survives a
	// daemon restart like any other container.
	if out, errp, err := takeLogPipes(clone.Init().Pid()); err != nil || errp == nil {
		t.Errorf("the restored init has no log pipes: %v (stderr's: %v)", err, errp)
	} else {
		out.Close()
		errp.Close()
	}
}
