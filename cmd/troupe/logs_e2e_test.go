package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// rss is the resident memory of process pid, in KiB.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// lineNumber is N of a line "line N ...", or -1.
func lineNumber(l string) int {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "line" {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}

// TestLogsOfAFloodAreBounded runs a container that prints as fast as it
// can for 20 s into a daemon whose logs are 1 MiB × 3: what is on disk
// stays within that, the daemon's memory stays flat, tail returns the last
// lines, and a follower sees lines written after a rotation.
func TestLogsOfAFloodAreBounded(t *testing.T) {
	const (
		maxSize  = 1 << 20
		maxFiles = 3
		flood    = 20 * time.Second
	)
	d := startDaemon(t, "--log-max-size", "1MiB", "--log-max-files", strconv.Itoa(maxFiles))
	bundle := filepath.Join(d.dir, "flood")
	script := `i=0; while :; do i=$((i+1)); echo "line $i 0123456789012345678901234567890123456789012345678901234567890"; done`
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	if code, body := d.call(t, "POST", "/containers/flood", `{"bundlePath": "`+bundle+`"}`); code != 201 {
		t.Fatalf("start: %d %s", code, body)
	}
	logPath := filepath.Join(d.dir, "root", "logs", "flood.log")

	// A follower of only what comes, from the start.
	resp, err := e2eClient.Get("http://" + d.tcp + "/containers/flood/logs?follow=true&tail=0")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow: %v %v", err, resp)
	}
	var mu sync.Mutex
	maxFollowed := -1
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if n := lineNumber(sc.Text()); n >= 0 {
				mu.Lock()
				maxFollowed = max(maxFollowed, n)
				mu.Unlock()
			}
		}
	}()
	defer resp.Body.Close()

	pid := d.cmd.Process.Pid
	testutil.Eventually(t, "the follower to get the flood's first lines", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return maxFollowed >= 0
	})
	// The baseline is the daemon's memory after two seconds of flood, its
	// buffers grown to their working size: the growth measured is what
	// comes after. The sleep is part of the measurement, not an ordering.
	time.Sleep(2 * time.Second)
	base := rss(t, pid)
	var peak, disk, peakDisk int64
	writtenAtRotation := -1
	// Sampled every 200 ms for the length of the flood: the period of a
	// measurement.
	for end := time.Now().Add(flood); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		peak = max(peak, rss(t, pid))
		disk = 0
		for _, f := range containerlog.Files(logPath) {
			if fi, err := os.Stat(f); err == nil {
				disk += fi.Size()
			}
		}
		peakDisk = max(peakDisk, disk)
		if writtenAtRotation < 0 && len(containerlog.Files(logPath)) > 1 {
			// The last line in the log when it was first seen rotated.
			_ = containerlog.Read(logPath, containerlog.ReadOptions{Tail: 1}, func(l containerlog.Line) error {
				writtenAtRotation = lineNumber(string(l.Content))
				return nil
			})
		}
	}
	if code, body := d.call(t, "PATCH", "/containers/flood", `{"signal": "KILL"}`); code != 200 {
		t.Fatalf("kill: %d %s", code, body)
	}
	testutil.Eventually(t, "the flood to stop", func() bool { return d.status(t, "flood") == "stopped" })

	t.Logf("daemon RSS %d KiB after 2 s, peak %d KiB; log on disk peak %d bytes (limit %d)", base, peak, peakDisk, maxSize*maxFiles)
	if peakDisk > maxSize*maxFiles {
		t.Errorf("the log took %d bytes on disk, limit %d", peakDisk, maxSize*maxFiles)
	}
	if files := containerlog.Files(logPath); len(files) != maxFiles {
		t.Errorf("log files %v, want %d", files, maxFiles)
	}
	if peak > base+8<<10 {
		t.Errorf("the daemon grew from %d to %d KiB while the container flooded its log", base, peak)
	}

	code, body := d.call(t, "GET", "/containers/flood/logs?tail=5", "")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if code != 200 || len(lines) != 5 {
		t.Fatalf("tail=5: %d, %d lines: %q", code, len(lines), body)
	}
	last := -1
	_ = containerlog.Read(logPath, containerlog.ReadOptions{}, func(l containerlog.Line) error {
		if n := lineNumber(string(l.Content)); n >= 0 {
			last = n
		}
		return nil
	})
	for i, l := range lines {
		if n := lineNumber(l); n != last-4+i {
			t.Errorf("tail line %d is %q, want line %d", i, l, last-4+i)
		}
	}

	mu.Lock()
	followed := maxFollowed
	mu.Unlock()
	t.Logf("%d lines written; first rotation seen at line %d; the follower got to line %d", last, writtenAtRotation, followed)
	if writtenAtRotation < 0 || followed <= writtenAtRotation {
		t.Errorf("the follower saw no line written after the first rotation (rotation at %d, followed to %d)", writtenAtRotation, followed)
	}
	if code, body := d.call(t, "DELETE", "/containers/flood", ""); code != 204 {
		t.Errorf("delete: %d %s", code, body)
	}
	if files := containerlog.Files(logPath); len(files) != 0 {
		t.Errorf("delete left the log's files %v", files)
	}
}
