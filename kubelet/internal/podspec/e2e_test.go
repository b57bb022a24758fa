package podspec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/kubelet/internal/podvolumes"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	"github.com/troupe-run/troupe/runtime/podns"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// exec runs args as uid in container id and returns its output.
func exec(ctx context.Context, t *testing.T, cl *client.Client, id string, uid int, args ...string) string {
	t.Helper()
	p, err := cl.Exec(ctx, id, api.ExecRequest{Args: args, Attach: true, User: &api.User{UID: uid}})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", args, id, err)
	}
	s, err := cl.Attach(ctx, id, p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out strings.Builder
	for {
		f, err := s.Recv(ctx)
		if errors.Is(err, client.ErrDetached) {
			break
		}
		if err != nil {
			t.Fatalf("exec %v in %s: %v", args, id, err)
		}
		if f.Control != nil {
			if f.Control.Exit != nil && f.Control.Exit.ExitCode != 0 {
				t.Errorf("exec %v in %s: exit %+v; output %q", args, id, *f.Control.Exit, out.String())
			}
			continue
		}
		out.Write(f.Data)
	}
	return out.String()
}

// TestPod runs a pod of two containers through podspec, podvolumes and
// podns on a real daemon, from an image in a local registry: an emptyDir
// they share, a configMap and a secret volume, runAsUser 1000.
func TestPod(t *testing.T) {
	registrytest.RequireBinary(t)
	d := daemontest.Start(t, daemontest.Options{Name: "podspec"})
	image := daemontest.PushBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cms := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	secrets := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := cms.Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"},
		Data: map[string]string{"greeting": "hello"}}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"},
		Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	volDir := filepath.Join(d.Dir, "kubelet-pods")
	vm := &podvolumes.Manager{Dir: volDir, ConfigMaps: corev1listers.NewConfigMapLister(cms),
		Secrets: corev1listers.NewSecretLister(secrets)}

	mounts := []corev1.VolumeMount{
		{Name: "shared", MountPath: "/shared"},
		{Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true},
		{Name: "sec", MountPath: "/var/run/sec", ReadOnly: true},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-pod", Namespace: "ns", UID: "0f4c5b7e-1a2b-4c3d-8e9f-001122334455"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)},
			Volumes: []corev1.Volume{
				{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
			},
			Containers: []corev1.Container{
				{Name: "writer", Image: image, VolumeMounts: mounts,
					Env:     []corev1.EnvVar{{Name: "MSG", Value: "from-writer"}},
					Command: []string{"sh", "-c", `echo "$(MSG) $(id -u)" > /shared/msg && exec sleep 100000`}},
				{Name: "reader", Image: image, VolumeMounts: mounts, Args: []string{"sleep", "100000"}},
			},
		},
	}

	vols, err := vm.Prepare(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Remove(pod.UID) })
	sandboxes := &podns.Manager{Dir: filepath.Join(d.Dir, "kubelet-sandboxes"), Apart: true}
	hostname, err := podspec.SandboxHostname(pod)
	if err != nil {
		t.Fatal(err)
	}
	sandbox, err := sandboxes.Make(string(pod.UID), hostname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sandboxes.Remove(string(pod.UID))
		_ = sandboxes.Close()
	})
	hosts, err := vm.WriteEtcHosts(pod.UID, podspec.EtcHosts(pod, []string{"10.88.0.7"}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		req, err := podspec.Container(pod, c, podspec.Options{Sandbox: sandbox, Volumes: vols, EtcHosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Client.Start(ctx, podid.Container(pod.UID, c.Name), req); err != nil {
			t.Fatalf("start %s: %v", c.Name, err)
		}
	}

	writer, reader := podid.Container(pod.UID, "writer"), podid.Container(pod.UID, "reader")
	for _, id := range []string{writer, reader} {
		c, err := d.Client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u := c.Processes[0].User; u.UID != 1000 {
			t.Errorf("%s runs as %+v", id, u)
		}
	}
	// The writer's init wrote the message, as uid 1000, into the emptyDir;
	// the reader sees it.
	var msg string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if msg = exec(ctx, t, d.Client, reader, 1000, "sh", "-c", "cat /shared/msg 2>/dev/null || true"); msg != "" {
			break
		}
	}
	if msg != "from-writer 1000\n" {
		t.Errorf("shared emptyDir: %q", msg)
	}
	checks := []struct {
		id   string
		args []string
		want string
	}{
		{reader, []string{"hostname"}, "e2e-pod\n"},
		{writer, []string{"hostname"}, "e2e-pod\n"},
		{reader, []string{"sh", "-c", "echo $HOSTNAME"}, "e2e-pod\n"},
		{reader, []string{"cat", "/etc/cfg/greeting"}, "hello"},
		{writer, []string{"cat", "/var/run/sec/password"}, "s3cret"},
		{reader, []string{"sh", "-c", "grep e2e-pod /etc/hosts"}, "10.88.0.7\te2e-pod\n"},
		{reader, []string{"sh", "-c", "echo back > /shared/reply && stat -c %u /shared/reply"}, "1000\n"},
		{writer, []string{"cat", "/shared/reply"}, "back\n"},
		{reader, []string{"sh", "-c", "touch /etc/cfg/x 2>/dev/null && echo writable || echo read-only"}, "read-only\n"},
	}
	for _, c := range checks {
		if got := exec(ctx, t, d.Client, c.id, 1000, c.args...); got != c.want {
			t.Errorf("%s: %v = %q, want %q", c.id, c.args, got, c.want)
		}
	}

	// Deleting the pod leaves nothing: no container, no volume.
	for _, id := range []string{writer, reader} {
		if err := d.Client.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := vm.Remove(pod.UID); err != nil {
		t.Fatal(err)
	}
	if err := sandboxes.Remove(string(pod.UID)); err != nil {
		t.Fatal(err)
	}
	if cs, err := d.Client.List(ctx); err != nil || len(cs) != 0 {
		t.Errorf("containers left: %v, %v", cs, err)
	}
	left, err := os.ReadDir(volDir)
	if err != nil || len(left) != 0 {
		t.Errorf("left under the volumes dir: %v, %v", left, err)
	}
	if ms, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(ms), volDir) {
		t.Errorf("mounts left under %s (%v)", volDir, err)
	}
}
