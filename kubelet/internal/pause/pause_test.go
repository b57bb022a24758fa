package pause

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skipf("no %s (Debian's busybox-static)", DefaultBusybox)
	}
}

func TestArchiveIsReproducible(t *testing.T) {
	requireBusybox(t)
	bin, err := readStatic(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference(bin)
	if !strings.HasPrefix(ref, Repository+":") || len(ref) != len(Repository)+13 {
		t.Errorf("reference %q", ref)
	}
	a, err := Archive(bin, ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Archive(bin, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two archives of one busybox differ")
	}
}

func TestRefusesDynamic(t *testing.T) {
	// The test binary itself is a program; a shell is dynamically linked
	// on Debian.
	for _, p := range []string{"/bin/sh", "/usr/bin/env"} {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := readStatic(real); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
				t.Errorf("%s: err = %v", real, err)
			}
			return
		}
	}
	t.Skip("no dynamically linked program found")
}

func TestRefusesNonELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := readStatic(p); err == nil {
		t.Error("a script was taken for a busybox")
	}
}

// TestEnsure imports the image into a real daemon, runs a pod's sandbox of
// it and stops it with SIGTERM.
func TestEnsure(t *testing.T) {
	requireBusybox(t)
	d := daemontest.Start(t, daemontest.Options{Name: "pause"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, err := Ensure(ctx, d.Client)
	if err != nil {
		t.Fatal(err)
	}
	img, err := d.Client.Image(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	// Again: the store has it, nothing is imported.
	if again, err := Ensure(ctx, d.Client); err != nil || again != ref {
		t.Fatalf("second Ensure: %q, %v", again, err)
	}
	if after, err := d.Client.Image(ctx, ref); err != nil || !after.Pulled.Equal(img.Pulled) {
		t.Errorf("second Ensure imported again: %v, %v", after.Pulled, err)
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", UID: "5b8e2a52-7c7c-4d8e-9a55-1f0f3d1b2c3d"}}
	id := podid.Sandbox(pod.UID)
	req, err := podspec.Sandbox(pod, ref)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client.Start(ctx, id, req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the shell sets its trap
	start := time.Now()
	if err := d.Client.Signal(ctx, id, c.Processes[0].Pid, int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	exit, err := d.Client.Wait(ctx, id, c.Processes[0].Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox exited %+v %v after SIGTERM", exit, time.Since(start))
	got, err := d.Client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.ExitStatus == nil || *got.State.ExitStatus != 0 {
		t.Errorf("sandbox state after SIGTERM: %+v", got.State)
	}
	if err := d.Client.Delete(ctx, id, true); err != nil {
		t.Fatal(err)
	}
}
