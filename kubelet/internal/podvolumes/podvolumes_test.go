package podvolumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// listers serves objects from memory, through the listers client-go
// builds on an indexer (what an informer fills).
func listers(t *testing.T, objs ...any) (corev1listers.ConfigMapLister, corev1listers.SecretLister) {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	cms, secrets := idx(), idx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.ConfigMap:
			err = cms.Add(o)
		case *corev1.Secret:
			err = secrets.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return corev1listers.NewConfigMapLister(cms), corev1listers.NewSecretLister(secrets)
}

func newManager(t *testing.T, objs ...any) *Manager {
	t.Helper()
	linuxtest.RequireRoot(t)
	dir := t.TempDir()
	cms, secrets := listers(t, objs...)
	m := &Manager{Dir: filepath.Join(dir, "pods"), ConfigMaps: cms, Secrets: secrets}
	// Whatever a failed test left mounted goes before TempDir's removal.
	t.Cleanup(func() { _ = unmountAll(dir) })
	return m
}

func pod(uid string, vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: types.UID(uid),
			Labels: map[string]string{"app": "web", "tier": "a\"b"}, Annotations: map[string]string{"note": "x\ny"}},
		Spec: corev1.PodSpec{Volumes: vols, Containers: []corev1.Container{{Name: "c",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}},
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func isTmpfs(t *testing.T, p string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

var (
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"},
		Data: map[string]string{"a.conf": "A", "b.conf": "B"}, BinaryData: map[string][]byte{"bin": {0, 1}}}
	secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"},
		Data: map[string][]byte{"password": []byte("hunter2"), "user": []byte("me")}}
)

func TestPrepare(t *testing.T) {
	tests := []struct {
		name string
		vol  corev1.VolumeSource
		// files are the contents expected under the volume's directory.
		files map[string]string
		// modes are permission bits expected.
		modes  map[string]os.FileMode
		tmpfs  bool
		fsType string
	}{
		{name: "configMap all keys", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
			files: map[string]string{"a.conf": "A", "b.conf": "B", "bin": "\x00\x01"},
			modes: map[string]os.FileMode{"a.conf": 0o644}},
		{name: "configMap items, paths and modes", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o600),
			Items: []corev1.KeyToPath{{Key: "a.conf", Path: "sub/dir/a"}, {Key: "b.conf", Path: "b", Mode: ptr.To[int32](0o755)}}}},
			files: map[string]string{"sub/dir/a": "A", "b": "B"},
			modes: map[string]os.FileMode{"sub/dir/a": 0o600, "b": 0o755, "sub/dir": os.ModeDir | 0o755}},
		{name: "optional configMap missing", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}},
			files: map[string]string{}},
		{name: "optional key missing", vol: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Optional: ptr.To(true),
			Items: []corev1.KeyToPath{{Key: "none", Path: "x"}, {Key: "a.conf", Path: "a"}}}},
			files: map[string]string{"a": "A"}},
		{name: "secret on a tmpfs", vol: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr.To[int32](0o400)}},
			files: map[string]string{"password": "hunter2", "user": "me"},
			modes: map[string]os.FileMode{"password": 0o400}, tmpfs: true},
		{name: "downwardAPI", vol: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
			{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
			{Path: "app", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
			{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
		}}},
			files: map[string]string{"name": "web", "ns": "ns", "uid": "uid-dw", "labels": "app=\"web\"\ntier=\"a\\\"b\"",
				"annotations": "note=\"x\\ny\"", "app": "web", "mem": "64", "cpu": "250"}},
		{name: "projected without a token", vol: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items: []corev1.KeyToPath{{Key: "a.conf", Path: "ca.crt"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}},
			files: map[string]string{"ca.crt": "A", "password": "hunter2", "user": "me", "namespace": "ns"}, tmpfs: true},
		{name: "emptyDir", vol: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
			files: map[string]string{}, modes: map[string]os.FileMode{".": os.ModeDir | 0o777}},
		{name: "emptyDir in memory", vol: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("8Mi"))}},
			files: map[string]string{}, modes: map[string]os.FileMode{".": os.ModeDir | 0o777}, tmpfs: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, cm, secret)
			p := pod("uid-dw", corev1.Volume{Name: "v", VolumeSource: tt.vol})
			if i == 0 {
				p.UID = "uid-first"
			}
			vols, err := m.Prepare(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			dir := vols["v"]
			if dir != filepath.Join(m.Dir, string(p.UID), "volumes", "v") {
				t.Fatalf("volume dir %s", dir)
			}
			if i == 0 {
				// The pod's directory is the agent's alone.
				if got := fileMode(t, filepath.Dir(filepath.Dir(dir))); got != os.ModeDir|0o700 {
					t.Errorf("pod dir mode %v", got)
				}
			}
			entries, _ := os.ReadDir(dir)
			var visible []string
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), "..") {
					visible = append(visible, e.Name())
				}
			}
			top := map[string]bool{}
			for p, want := range tt.files {
				top[strings.Split(p, "/")[0]] = true
				if got := read(t, filepath.Join(dir, p)); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			if len(visible) != len(top) {
				t.Errorf("volume holds %v, want %v", visible, tt.files)
			}
			for p, want := range tt.modes {
				if got := fileMode(t, filepath.Join(dir, p)); got != want {
					t.Errorf("mode of %s = %v, want %v", p, got, want)
				}
			}
			if got := isTmpfs(t, dir); got != tt.tmpfs {
				t.Errorf("on a tmpfs: %v, want %v", got, tt.tmpfs)
			}
			// Again, as after an agent restart: the same, nothing mounted twice.
			if _, err := m.Prepare(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.files {
				if got := read(t, filepath.Join(dir, p)); got != want {
					t.Errorf("after a second Prepare: %s = %q, want %q", p, got, want)
				}
			}
			if ms, _ := mountsUnder(filepath.Join(m.Dir, string(p.UID))); len(ms) > 1 || (len(ms) == 1) != tt.tmpfs {
				t.Errorf("mounts after a second Prepare: %v", ms)
			}
			if err := m.Remove(p.UID); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(m.Dir, string(p.UID))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pod dir left: %v", err)
			}
			if err := m.Remove(p.UID); err != nil {
				t.Errorf("second Remove: %v", err)
			}
		})
	}
}

func TestPrepareRefused(t *testing.T) {
	tests := []struct {
		name  string
		vol   corev1.VolumeSource
		field string
	}{
		{"hostPath", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}, "spec.volumes[0].hostPath"},
		{"pvc", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}, "spec.volumes[0]"},
		{"hugepages", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages}}, "spec.volumes[0].emptyDir.medium"},
		{"missing key", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
			Items: []corev1.KeyToPath{{Key: "nope", Path: "x"}}}}, "spec.volumes[0].configMap.items[0].key"},
		{"escaping path", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
			Items: []corev1.KeyToPath{{Key: "a.conf", Path: "../x"}}}}, ""},
		{"missing secret", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}, ""},
		{"token without a client", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}, ""},
		{"env-only field path", corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}}, "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, cm, secret)
			p := pod("uid-bad", corev1.Volume{Name: "v", VolumeSource: tt.vol})
			_, err := m.Prepare(context.Background(), p)
			if err == nil {
				t.Fatal("prepared")
			}
			var fe *podspec.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Errorf("err = %v, want a FieldError of %s", err, tt.field)
			}
			if err := m.Remove(p.UID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFSGroup(t *testing.T) {
	m := newManager(t, cm)
	p := pod("uid-fs",
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o600),
			Items: []corev1.KeyToPath{{Key: "a.conf", Path: "d/a"}}}}})
	p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](4321)}
	vols, err := m.Prepare(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove(p.UID) })
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{vols["scratch"], os.ModeDir | os.ModeSetgid | 0o777},
		{filepath.Join(vols["cfg"], "d"), os.ModeDir | os.ModeSetgid | 0o755},
		{filepath.Join(vols["cfg"], "d", "a"), 0o640},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 4321 {
			t.Errorf("%s: gid %d", c.path, gid)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
}

// TestUpdate checks that a second Prepare replaces what a volume holds as a
// whole: a key gone is gone, the old version's directory too.
func TestUpdate(t *testing.T) {
	linuxtest.RequireRoot(t)
	dir := t.TempDir()
	first := []file{{path: "a", data: []byte("1"), mode: 0o644}, {path: "d/b", data: []byte("2"), mode: 0o644}}
	if err := writeAtomic(dir, first, ownership{}); err != nil {
		t.Fatal(err)
	}
	old, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(dir, []file{{path: "a", data: []byte("new"), mode: 0o644}, {path: "c", data: []byte("3"), mode: 0o644}}, ownership{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "a")); got != "new" {
		t.Errorf("a = %q", got)
	}
	for _, gone := range []string{"d", old} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", gone, err)
		}
	}
	if err := writeAtomic(dir, []file{{path: "x", data: nil, mode: 0o644}, {path: "./x", data: nil, mode: 0o644}}, ownership{}); err == nil {
		t.Error("a path given twice was written")
	}
}

func TestWriteEtcHosts(t *testing.T) {
	m := newManager(t)
	p := pod("uid-hosts")
	if _, err := m.Prepare(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	path, err := m.WriteEtcHosts(p.UID, []byte("127.0.0.1 localhost\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "127.0.0.1 localhost\n" || fileMode(t, path) != 0o644 {
		t.Errorf("hosts %q mode %v", got, fileMode(t, path))
	}
	if err := m.Remove(p.UID); err != nil {
		t.Fatal(err)
	}
}

// TestServiceAccountToken prepares the projected volume that Kubernetes
// gives every pod (kube-api-access-*) against a real API server.
func TestServiceAccountToken(t *testing.T) {
	linuxtest.RequireRoot(t)
	cp := controlplane.StartTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The pod a token is bound to must exist; its service account is the
	// namespace's default one, which the controller manager makes.
	var sa error
	for {
		_, sa = cp.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if sa == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sa != nil {
		t.Fatalf("no default service account: %v", sa)
	}
	p, err := cp.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tok"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var access *corev1.Volume
	for i := range p.Spec.Volumes {
		if strings.HasPrefix(p.Spec.Volumes[i].Name, "kube-api-access-") {
			access = &p.Spec.Volumes[i]
		}
	}
	if access == nil {
		t.Fatalf("no kube-api-access volume in %+v", p.Spec.Volumes)
	}
	root, err := cp.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	for err != nil && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		root, err = cp.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, root)
	m.Client = cp.Client
	vols, err := m.Prepare(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove(p.UID) })
	dir := vols[access.Name]
	if got := read(t, filepath.Join(dir, "namespace")); got != "default" {
		t.Errorf("namespace %q", got)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "ca.crt")), "BEGIN CERTIFICATE") {
		t.Error("ca.crt is no certificate")
	}
	tok := read(t, filepath.Join(dir, "token"))
	review, err := cp.Client.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:default:default" {
		t.Errorf("token review: %+v", review.Status)
	}
	if !isTmpfs(t, dir) {
		t.Error("the token is not on a tmpfs")
	}
}

// TestSymlinkedDir prepares a secret under a Dir reached through a symlink:
// a second Prepare must not mount again, and Remove must unmount.
func TestSymlinkedDir(t *testing.T) {
	m := newManager(t, secret)
	real := m.Dir + "-real"
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, m.Dir); err != nil {
		t.Fatal(err)
	}
	p := pod("uid-link", corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}})
	for range 2 {
		if _, err := m.Prepare(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if ms, _ := mountsUnder(real); len(ms) != 1 {
		t.Errorf("mounts: %v", ms)
	}
	if uids, err := m.Prepared(); err != nil || len(uids) != 1 || uids[0] != p.UID {
		t.Errorf("Prepared: %v, %v", uids, err)
	}
	if err := m.Remove(p.UID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountsUnder(real); len(ms) != 0 {
		t.Errorf("mounts left: %v", ms)
	}
	if left, _ := os.ReadDir(real); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if uids, err := m.Prepared(); err != nil || len(uids) != 0 {
		t.Errorf("Prepared after Remove: %v, %v", uids, err)
	}
}

func TestBadUID(t *testing.T) {
	m := newManager(t)
	for _, uid := range []types.UID{"", ".", "..", "a/b", "/abs"} {
		if err := m.Remove(uid); err == nil {
			t.Errorf("Remove(%q) accepted", uid)
		}
		if _, err := m.Prepare(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}}); err == nil {
			t.Errorf("Prepare of uid %q accepted", uid)
		}
	}
}

// BenchmarkPrepare prepares and removes the volume every pod has: a
// projected configMap and downward API on a tmpfs (the token left out: it
// is the API server's time).
func BenchmarkPrepare(b *testing.B) {
	dir := b.TempDir()
	b.Cleanup(func() { _ = unmountAll(dir) })
	cms := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := cms.Add(cm); err != nil {
		b.Fatal(err)
	}
	m := &Manager{Dir: dir, ConfigMaps: corev1listers.NewConfigMapLister(cms)}
	p := pod("uid-bench", corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items: []corev1.KeyToPath{{Key: "a.conf", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}})
	for b.Loop() {
		if _, err := m.Prepare(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if err := m.Remove(p.UID); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRemoveLeavesOthersMounts: a host directory that someone else
// bind-mounted deep inside a pod's volume is unmounted by Remove, not
// emptied.
func TestRemoveLeavesOthersMounts(t *testing.T) {
	m := newManager(t, secret)
	p := pod("uid-nested", corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	vols, err := m.Prepare(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "keep"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(vols["data"], "a", "b")
	if err := os.MkdirAll(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, inner, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inner, unix.MNT_DETACH) })
	if err := m.Remove(p.UID); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(host, "keep")); err != nil || string(data) != "mine" {
		t.Errorf("the host directory mounted in the volume lost its file: %q, %v", data, err)
	}
	if ms, _ := mountsUnder(m.Dir); len(ms) != 0 {
		t.Errorf("mounts left: %v", ms)
	}
}
