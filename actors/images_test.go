package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/fake"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// imageEnv is a real supervisor with an image store, and a registry on
// loopback holding a busybox image whose default command prints a line and
// sleeps.
type imageEnv struct {
	*realEnv
	store *image.Store
	ref   string
	reg   *registrytest.Registry
}

func newImageEnv(t *testing.T) *imageEnv {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Config{})
	e := &imageEnv{reg: reg, ref: reg.Host() + "/busybox:1"}
	env := shared.New(t, troupetest.Options{Name: "images"})
	registrytest.Push(t, e.ref, v1.Config{Cmd: []string{"sh", "-c", "echo hello from the image; exec sleep 300"}},
		registrytest.TarDir(t, env.Rootfs))
	var err error
	if e.store, err = image.Open(filepath.Join(env.Dir, "images"), image.Options{}); err != nil {
		t.Fatal(err)
	}
	e.realEnv = newRealEnvWith(t, env, Config{Images: &Images{Store: e.store}})
	return e
}

// output is what container id's init printed so far.
func (e *imageEnv) output(ctx context.Context, id string) string {
	e.t.Helper()
	path, err := e.sup.LogPath(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return linuxtest.Output(e.t, path)
}

func TestImageStartAndDelete(t *testing.T) {
	e := newImageEnv(t)
	ctx := testContext(t)
	start := func(id string, m *ImageStart) (*StartContainerResult, error) {
		return e.sup.StartContainer(ctx, StartContainer{ID: id, Image: m})
	}

	// Never pulled: the default policy does not reach the registry.
	if _, err := start("c0", &ImageStart{Ref: e.ref}); !errors.Is(err, errclass.NotFound) {
		t.Fatalf("a start from an image never pulled: %v", err)
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("a failed start left roots: %v", ids)
	}
	r, err := start("c1", &ImageStart{Ref: e.ref, Pull: api.PullMissing})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.sup.Image(e.ref)
	if err != nil {
		t.Fatal(err)
	}
	if r.Container.Image != img.Digest || r.Container.State.Status != api.Running {
		t.Errorf("started %+v, want running from %s", r.Container, img.Digest)
	}
	// Overrides: the command and the environment.
	if _, err := start("c2", &ImageStart{Ref: img.Digest, Overrides: imagespec.Overrides{
		Args: []string{"sh", "-c", "echo greeting=$GREETING host=$(hostname); exec sleep 300"},
		Env:  []string{"GREETING=hi"}}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"c1": "hello from the image\n", "c2": "greeting=hi host=c2\n"} {
		if !testutil.Within(10*time.Second, func() bool { return e.output(ctx, id) == want }) {
			t.Errorf("%s printed %q, want %q", id, e.output(ctx, id), want)
		}
	}
	if got, _ := e.sup.Image(e.ref); got.Containers != 2 {
		t.Errorf("the image counts %d containers, want 2", got.Containers)
	}
	if _, err := e.sup.RemoveImage(e.ref, false); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("removing an image in use: %v", err)
	}
	// Bad overrides fail the start and leave no root.
	if _, err := start("c3", &ImageStart{Ref: e.ref, Overrides: imagespec.Overrides{User: "nobody-here"}}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a start as a user the image lacks: %v", err)
	}
	if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "c4", BundlePath: "/x", Image: &ImageStart{Ref: e.ref}}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a start from an image and a bundle: %v", err)
	}

	for _, id := range []string{"c1", "c2"} {
		if err := e.sup.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("roots left after deleting the containers: %v", ids)
	}
	if _, err := e.sup.RemoveImage(e.ref, false); err != nil {
		t.Errorf("removing the image once unused: %v", err)
	}
}

// TestImageOrphanRootsRemoved: a root whose container is gone (its daemon
// died in between) goes when the next supervisor adopts what runs.
func TestImageOrphanRootsRemoved(t *testing.T) {
	e := newImageEnv(t)
	ctx := testContext(t)
	if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "kept", Image: &ImageStart{Ref: e.ref, Pull: api.PullMissing}}); err != nil {
		t.Fatal(err)
	}
	img, err := e.store.Get(e.ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Mount(ctx, "ghost", img); err != nil {
		t.Fatal(err)
	}
	next, err := Spawn(e.system.Root, Config{Runtime: e.rt, Name: "next", Adopt: true, Logger: quietLogger(),
		Images: &Images{Store: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Stop()
	ids, err := e.store.Mounted()
	if err != nil || len(ids) != 1 || ids[0] != "kept" {
		t.Errorf("roots after adoption: %v, %v; want only kept's", ids, err)
	}
	if c, ok := next.State().Get("kept"); !ok || c.Image != img.Digest {
		t.Errorf("the adopted container: %+v, want it from %s", c, img.Digest)
	}
	// Its root goes with it.
	if err := next.Delete(ctx, "kept", true); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("roots after deleting the adopted container: %v", ids)
	}
}

// TestImageCheckpointRestore: a container from an image is checkpointed,
// deleted (its root goes) and restored: its processes go on where they
// were, on a new root from the same image holding what it had written. A
// clone from the same checkpoint gets a root of its own.
func TestImageCheckpointRestore(t *testing.T) {
	linuxtest.RequireCriu(t)
	e := newImageEnv(t)
	ctx := testContext(t)
	// The count is renamed into place: the dump may stop the shell between
	// a truncation and its write, which would leave /count empty.
	counter := []string{"sh", "-c", "mkdir -p /data && echo kept > /data/file; rm /etc/group; " +
		"i=0; while true; i=$((i+1)); do echo $i > /count.new; mv /count.new /count; sleep 0.05; done"}
	if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "c", Image: &ImageStart{Ref: e.ref, Pull: api.PullMissing,
		Overrides: imagespec.Overrides{Args: counter}}}); err != nil {
		t.Fatal(err)
	}
	// The container's root, as its init sees it: the daemon's own
	// namespace lets go of a running container's root.
	root := func(id string) string {
		c, err := e.sup.Get(ctx, id)
		if err != nil || len(c.Processes) == 0 {
			t.Fatalf("%s: %+v, %v", id, c, err)
		}
		return fmt.Sprintf("/proc/%d/root", c.Processes[0].Pid)
	}
	count := func(id string) int {
		b, _ := os.ReadFile(filepath.Join(root(id), "count"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	testutil.Eventually(t, "the counter to pass 5", func() bool { return count("c") > 5 })
	if _, err := e.sup.Checkpoint(ctx, "c", "cp", runtime.CheckpointOptions{Exit: true}); err != nil {
		t.Fatal(err)
	}
	// Its init is gone: what it wrote is in its root's upper directory.
	b, err := os.ReadFile(filepath.Join(e.store.RootPath("c"), "..", "upper", "count"))
	if err != nil {
		t.Fatal(err)
	}
	dumped, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || dumped <= 5 {
		t.Fatalf("the counter at the checkpoint: %q", b)
	}
	if err := e.sup.Delete(ctx, "c", true); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Fatalf("roots after the delete: %v", ids)
	}
	// Without its image a restore fails, naming it, unless it may pull
	// it: then it comes by digest from where it was pulled.
	img, err := e.store.Get(e.ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.RemoveImage(img.Digest, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.Restore(ctx, "c", "", "c/cp"); !errors.Is(err, errclass.NotFound) || !strings.Contains(err.Error(), img.Digest) {
		t.Errorf("a restore without the image: %v; want NotFound naming %s", err, img.Digest)
	}
	if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "c", Checkpoint: "c/cp", Pull: api.PullAlways}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a restore with pull always: %v; want InvalidArgument", err)
	}

	for i, id := range []string{"c", "clone"} {
		pull := api.PullMissing
		if i > 0 {
			pull = "" // it is there now
		}
		r, err := e.sup.StartContainer(ctx, StartContainer{ID: id, Checkpoint: "c/cp", Pull: pull})
		if err != nil {
			t.Fatalf("restore %s: %v", id, err)
		}
		if r.Container.Image == "" || r.Container.State.Status != api.Running {
			t.Errorf("restored %s: %+v", id, r.Container)
		}
		if r.Container.Image != img.Digest {
			t.Errorf("restored %s from image %s, want %s", id, r.Container.Image, img.Digest)
		}
		testutil.Eventually(t, id+"'s counter to go on", func() bool { return count(id) > dumped+3 })
		root := root(id)
		if b, err := os.ReadFile(filepath.Join(root, "data", "file")); err != nil || string(b) != "kept\n" {
			t.Errorf("%s: /data/file: %q, %v", id, b, err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc", "group")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the file the container deleted is back: %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc", "passwd")); err != nil {
			t.Errorf("%s: the image's files: %v", id, err)
		}
	}
	for _, id := range []string{"c", "clone"} {
		if err := e.sup.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("roots after deleting the restored containers: %v", ids)
	}
	if got, err := e.store.Get(img.Digest); err != nil || strings.Join(got.Names, ",") != e.reg.Host()+"/busybox@"+img.Digest {
		t.Errorf("the image the restore pulled: %+v, %v; want it named by its digest", got, err)
	}
}

// TestImageWarmPool: a pool of an image serves starts from that image with
// the same overrides; a claimed container is named (host, root) after its
// id as a cold one is, and nothing of the pool's is left once it is gone.
func TestImageWarmPool(t *testing.T) {
	e := newImageEnv(t)
	ctx := testContext(t)
	args := imagespec.Overrides{Args: []string{"sh", "-c", "echo host=$(hostname); exec sleep 300"}}
	m := &ImageStart{Ref: e.ref, Pull: api.PullMissing, Overrides: args}

	p, created, err := e.sup.SetImagePool(ctx, "img", m, 2)
	if err != nil || !created {
		t.Fatalf("set image pool = %+v, %v, %v", p, created, err)
	}
	img, err := e.store.Get(e.ref)
	if err != nil {
		t.Fatal(err)
	}
	if p.Image != e.ref || p.Digest != img.Digest || p.BundlePath != "" {
		t.Errorf("pool = %+v, want of %s (%s)", p, e.ref, img.Digest)
	}
	ready := func(n int) func() bool {
		return func() bool { p, err := e.sup.Pool(ctx, "img"); return err == nil && p.Ready == n && p.Filling == 0 }
	}
	testutil.Eventually(t, "a full pool", ready(2))
	if got, _ := e.sup.Image(e.ref); got.Containers != 2 {
		t.Errorf("the image counts %d users, want the pool's 2", got.Containers)
	}
	if _, err := e.sup.RemoveImage(e.ref, false); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("removing the image of a pool: %v", err)
	}

	start := func(id string, m *ImageStart) api.Container {
		t.Helper()
		r, err := e.sup.StartContainer(ctx, StartContainer{ID: id, Image: m})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return r.Container
	}
	// By name or by digest, with the same overrides: warm.
	for _, c := range []struct{ id, ref string }{{"w1", e.ref}, {"w2", img.Digest}} {
		got := start(c.id, &ImageStart{Ref: c.ref, Overrides: args})
		if !got.Warm || got.Image != img.Digest || got.State.Status != api.Running {
			t.Errorf("start %s = %+v, want warm and running from %s", c.id, got, img.Digest)
		}
		want := "host=" + c.id + "\n"
		if !testutil.Within(10*time.Second, func() bool { return e.output(ctx, c.id) == want }) {
			t.Errorf("%s printed %q, want %q", c.id, e.output(ctx, c.id), want)
		}
		// Its root is its id's: what it writes is in its own upper dir.
		if _, err := e.sup.Exec(ctx, c.id, runtime.ProcessSpec{Args: []string{"sh", "-c", "echo " + c.id + " > /mine"}}); err != nil {
			t.Fatal(err)
		}
		upper := filepath.Join(filepath.Dir(e.store.RootPath(c.id)), "upper", "mine")
		if !testutil.Within(5*time.Second, func() bool { d, _ := os.ReadFile(upper); return string(d) == c.id+"\n" }) {
			t.Errorf("%s's write is not in its upper directory %s", c.id, upper)
		}
	}
	// Other overrides: cold, from the same image.
	if got := start("cold", &ImageStart{Ref: e.ref, Overrides: imagespec.Overrides{Args: []string{"sleep", "300"}}}); got.Warm {
		t.Errorf("a start with other overrides was warm: %+v", got)
	}
	// A taken id leaves the prepared container and its root to the next.
	testutil.Eventually(t, "the pool refilled", ready(2))
	if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "w1", Image: &ImageStart{Ref: e.ref, Overrides: args}}); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("a warm start of a taken id: %v", err)
	}
	if got := start("w3", &ImageStart{Ref: e.ref, Overrides: args}); !got.Warm {
		t.Errorf("start after a refused one: %+v", got)
	}

	// A daemon that restarts adopts the claimed containers with their
	// image, and removes the roots of the prepared ones.
	if err := e.sup.DeletePool(ctx, "img"); err != nil {
		t.Fatal(err)
	}
	ids, err := e.store.Mounted()
	if err != nil || !sameSet(ids, "w1", "w2", "w3", "cold") {
		t.Errorf("roots after the pool's deletion: %v, %v; want the four containers'", ids, err)
	}
	next, err := Spawn(e.system.Root, Config{Runtime: e.rt, Name: "next", Adopt: true, Logger: quietLogger(),
		Images: &Images{Store: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Stop()
	if c, ok := next.State().Get("w2"); !ok || c.Image != img.Digest {
		t.Errorf("the adopted warm container: %+v, want it from %s", c, img.Digest)
	}
	for _, id := range []string{"w1", "w2", "w3", "cold"} {
		if err := next.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("roots left: %v", ids)
	}
	if left, _ := os.ReadDir(filepath.Dir(filepath.Dir(e.store.RootPath("x")))); len(left) != 0 {
		t.Errorf("entries left in the roots' directory: %v", left)
	}
	if _, err := e.sup.RemoveImage(e.ref, false); err != nil {
		t.Errorf("removing the image once unused: %v", err)
	}
}

func TestImageWarmPoolErrors(t *testing.T) {
	e := newImageEnv(t)
	ctx := testContext(t)
	if _, err := e.sup.PullImage(ctx, e.ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    *ImageStart
		want error
	}{
		{"unknown image", &ImageStart{Ref: e.reg.Host() + "/nothing:1"}, errclass.NotFound},
		{"user the image lacks", &ImageStart{Ref: e.ref, Overrides: imagespec.Overrides{User: "nobody-here"}}, errclass.InvalidArgument},
		{"bad pull policy", &ImageStart{Ref: e.ref, Pull: "sometimes"}, errclass.InvalidArgument},
	} {
		if _, _, err := e.sup.SetImagePool(ctx, "bad", tc.m, 1); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("refused pools left roots: %v", ids)
	}
	m := &ImageStart{Ref: e.ref}
	if _, _, err := e.sup.SetImagePool(ctx, "one", m, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.sup.SetImagePool(ctx, "two", m, 0); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("a second pool of the same image and overrides: %v", err)
	}
	other := &ImageStart{Ref: e.ref, Overrides: imagespec.Overrides{Env: []string{"A=1"}}}
	if _, _, err := e.sup.SetImagePool(ctx, "one", other, 1); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("pool one made again with other overrides: %v", err)
	}
	if p, created, err := e.sup.SetImagePool(ctx, "one", m, 1); err != nil || created || p.Size != 1 {
		t.Errorf("resize by the same image: %+v, %v, %v", p, created, err)
	}
	if _, _, err := e.sup.SetImagePool(ctx, "two", other, 0); err != nil {
		t.Errorf("a pool of other overrides: %v", err)
	}
	for _, n := range []string{"one", "two"} {
		if err := e.sup.DeletePool(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("deleted pools left roots: %v", ids)
	}
}

// sameSet says whether got holds want, in any order.
func sameSet(got []string, want ...string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

// TestImageHundredContainersShareLayers: 100 running containers of one
// image hold one copy of its layers, each adding only its own few
// directories; deleting them takes every root.
func TestImageHundredContainersShareLayers(t *testing.T) {
	e := newImageEnv(t)
	ctx := testContext(t)
	if _, err := e.sup.PullImage(ctx, e.ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Dir(filepath.Dir(filepath.Dir(e.store.RootPath("x"))))
	layersDir := filepath.Join(storeDir, "layers")
	layersBefore, _ := os.ReadDir(layersDir)
	before := testutil.DiskUsage(t, storeDir)

	const n = 100
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.sup.StartContainer(ctx, StartContainer{ID: fmt.Sprintf("c%03d", i), Image: &ImageStart{Ref: e.ref,
				Overrides: imagespec.Overrides{Args: []string{"sleep", "300"}}}})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.sup.State().Containers); got != n {
		t.Fatalf("%d containers, want %d", got, n)
	}
	after := testutil.DiskUsage(t, storeDir)
	layersAfter, _ := os.ReadDir(layersDir)
	img, _ := e.sup.Image(e.ref)
	t.Logf("store: %d KiB with the image (%d bytes compressed), %d KiB with %d containers running from it", before>>10, img.Size, after>>10, n)
	if len(layersAfter) != len(layersBefore) {
		t.Errorf("layer directories: %d before the starts, %d after", len(layersBefore), len(layersAfter))
	}
	// busybox unpacked is about 2 MiB: a copy per container would be 200.
	if grown := after - before; grown > n*64<<10 {
		t.Errorf("%d containers grew the store by %d KiB: more than 64 KiB each", n, grown>>10)
	}
	for i := range n {
		go func() { errs <- e.sup.Delete(ctx, fmt.Sprintf("c%03d", i), true) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if ids, _ := e.store.Mounted(); len(ids) != 0 {
		t.Errorf("roots left: %v", ids)
	}
}

// TestImageRootMountedOnceAdmitted: a start from an image mounts its root
// only once it holds an admission slot, so that the roots of a burst's
// waiting starts are not in the daemon's mount namespace (which every
// init copies) while the others start; a waiting start that fails at its
// turn leaves no root either.
func TestImageRootMountedOnceAdmitted(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/tiny:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"/bin/true"}},
		registrytest.Tar(t, map[string]string{"bin/true": "#!/bin/sh\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n"}))
	store, err := image.Open(filepath.Join(t.TempDir(), "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e := newFakeEnv(t, fake.Options{Gate: gate}, Config{MaxStarts: 1, Images: &Images{Store: store}})
	ctx := testContext(t)
	if _, err := store.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	start := func(id string, o imagespec.Overrides, want error) {
		go func() {
			_, err := e.sup.StartContainer(ctx, StartContainer{ID: id, Image: &ImageStart{Ref: ref, Overrides: o}})
			if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
				errs <- fmt.Errorf("start %s: %v, want %v", id, err, want)
				return
			}
			errs <- nil
		}()
	}
	start("i0", imagespec.Overrides{}, nil)
	testutil.Eventually(t, "a start in the runtime", func() bool { return e.rt.InFlight() == 1 })
	start("i1", imagespec.Overrides{}, nil)
	start("i2", imagespec.Overrides{}, nil)
	testutil.Eventually(t, "two starts waiting for admission", func() bool {
		return e.sup.deps.admission.waiting() == 2
	})
	if ids, err := store.Mounted(); err != nil || len(ids) != 1 {
		t.Errorf("roots while one start holds the only slot: %v, %v; want one", ids, err)
	}
	start("bad", imagespec.Overrides{User: "nobody-here"}, errclass.InvalidArgument)
	close(gate)
	for range 4 {
		if err := testutil.Receive(t, "a start's answer", errs); err != nil {
			t.Error(err)
		}
	}
	for _, id := range []string{"i0", "i1", "i2"} {
		if err := e.sup.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := store.Mounted(); len(ids) != 0 {
		t.Errorf("roots left after deleting the containers: %v", ids)
	}
}
