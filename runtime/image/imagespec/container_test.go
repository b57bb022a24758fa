package imagespec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// This test binary is also the container init.
	linux.Init()
	os.Exit(linuxtest.Guarded(m.Run))
}

// containerEnv is a runtime on its own state dir and cgroup parent, and a
// busybox rootfs with an unprivileged user "app" (1000:1000, also in group
// "extra", 2000).
type containerEnv struct {
	t      *testing.T
	rt     *linux.Runtime
	dir    string
	rootfs string
}

func newContainerEnv(t *testing.T) *containerEnv {
	t.Helper()
	linuxtest.RequireRoot(t)
	dir, err := os.MkdirTemp("", "imagespec-")
	if err != nil {
		t.Fatal(err)
	}
	// Containers run as other users than the directory's owner.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parent := "/troupe-test-" + filepath.Base(dir)
	linuxtest.TrackCgroup(parent)
	rt, err := linux.New(linux.Options{StateDir: filepath.Join(dir, "state"), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		linuxtest.RemoveCgroup(parent)
		if err := linuxtest.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	rootfs, err := busybox.Rootfs(filepath.Join(dir, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, rootfs, "etc/passwd", testPasswd)
	write(t, rootfs, "etc/group", testGroup)
	mkdir(t, rootfs, "mnt")
	mkdir(t, rootfs, "home/app")
	if err := os.Chown(filepath.Join(rootfs, "home/app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return &containerEnv{t: t, rt: rt, dir: dir, rootfs: rootfs}
}

// run writes s into a bundle, starts it as container id, waits for its
// init and returns its exit code and output.
func (e *containerEnv) run(id string, s *specs.Spec) (int, string) {
	t := e.t
	t.Helper()
	b := filepath.Join(e.dir, "bundles", id)
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, bundle.ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.rt.Start(ctx, id, runtime.StartOptions{BundlePath: b})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil && !errors.Is(err, errclass.NotFound) {
			t.Errorf("delete %s: %v", id, err)
		}
	})
	st, err := c.Init().Wait(ctx)
	if err != nil {
		t.Fatalf("%s: the init did not exit: %v", id, err)
	}
	return st.Code, linuxtest.Output(t, c.LogPath())
}

// shell is an image that runs its Cmd as a shell script.
func shell(script string) Image {
	return Image{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}}
}

// report prints one "name=value" line per thing the tests look at.
const report = `echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "groups=$(id -G)"; echo "HOME=$HOME"; ` +
	`echo "HOSTNAME=$HOSTNAME"; echo "hostname=$(hostname)"; echo "pwd=$(pwd)"; ` +
	`echo "nofile=$(ulimit -n):$(ulimit -Hn)"; grep '^Seccomp:' /proc/self/status | tr '\t' ' '`

// mountAndUnshare tries what the default profile refuses, then something
// ordinary.
const mountAndUnshare = `grep '^Seccomp:' /proc/self/status | tr '\t' ' '; ` +
	`out=$(unshare -U true 2>&1); echo "unshare=$? $out"; ` +
	`out=$(mount -t tmpfs x /mnt 2>&1); echo "mount=$? $out"; ` +
	`sh -c 'echo ok'`

func TestContainerFromImage(t *testing.T) {
	e := newContainerEnv(t)
	data := t.TempDir()
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, data, "greeting", "hello from the host\n")

	tests := []struct {
		name string
		img  Image
		o    Overrides
		p    Policy
		// edit changes the generated spec (the control case).
		edit func(*specs.Spec)
		// want are the lines the output must have; contains the parts of
		// lines starting with a key ("unshare=") it must have.
		want     []string
		contains map[string][]string
		code     int
	}{
		{
			name: "image-user",
			img:  Image{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{report}, User: "app", WorkingDir: "/home/app"},
			want: []string{"uid=1000", "gid=1000", "groups=1000 29 2000", "HOME=/home/app", "HOSTNAME=image-user",
				"hostname=image-user", "pwd=/home/app", "Seccomp: 2",
				fmt.Sprintf("nofile=%d:%d", wantNofile(t).Soft, wantNofile(t).Hard)},
		},
		{
			name: "overridden",
			img:  Image{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo wrong"}, User: "app", WorkingDir: "/home/app"},
			o:    Overrides{Args: []string{report}, User: "4242", Cwd: "/tmp", Hostname: "web", Env: []string{"HOME=/var/empty"}},
			want: []string{"uid=4242", "gid=0", "groups=0", "HOME=/var/empty", "HOSTNAME=web", "hostname=web", "pwd=/tmp"},
		},
		{
			name: "seccomp",
			img:  shell(mountAndUnshare),
			want: []string{"Seccomp: 2", "ok"},
			contains: map[string][]string{
				"unshare=": {"unshare=1 ", "Operation not permitted"},
				// busybox's words for EPERM.
				"mount=": {"mount=1 ", "permission denied"},
			},
		},
		{
			// With CAP_SYS_ADMIN the kernel would let both through: the
			// default profile is what refuses them.
			name: "seccomp-cap-sys-admin",
			img:  shell(mountAndUnshare),
			o:    Overrides{CapAdd: []string{"CAP_SYS_ADMIN"}},
			edit: func(s *specs.Spec) { s.Linux.Seccomp = DefaultSeccomp(DefaultCapabilities()) },
			want: []string{"Seccomp: 2", "ok"},
			contains: map[string][]string{
				"unshare=": {"unshare=1 ", "Operation not permitted"},
				"mount=":   {"mount=1 ", "permission denied"},
			},
		},
		{
			// And the profile of a container given CAP_SYS_ADMIN lifts
			// the rules.
			name: "cap-sys-admin",
			img:  shell(mountAndUnshare),
			o:    Overrides{CapAdd: []string{"CAP_SYS_ADMIN"}},
			want: []string{"Seccomp: 2", "unshare=0 ", "mount=0 ", "ok"},
		},
		{
			// Without the profile an unprivileged unshare works: the
			// profile, not the capabilities or the kernel, refused it.
			name: "no-seccomp",
			img:  shell(mountAndUnshare),
			edit: func(s *specs.Spec) { s.Linux.Seccomp = nil },
			want: []string{"Seccomp: 0", "unshare=0 ", "ok"},
		},
		{
			name: "read-only",
			img: shell(`out=$(touch /file 2>&1); echo "root=$? $out"; ` +
				`touch /scratch/f && echo "scratch=ok"; ` +
				`cat /data/greeting; out=$(touch /data/f 2>&1); echo "data=$? $out"; ` +
				`cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max`),
			o: Overrides{ReadOnlyRoot: true, Resources: Resources{Memory: 64 << 20},
				Mounts: []Mount{{Type: Tmpfs, Destination: "/scratch", Size: 1 << 20}, {Type: Bind, Source: data, Destination: "/data", ReadOnly: true}}},
			p:    Policy{AllowBinds: true, Denied: []string{e.dir}},
			want: []string{"scratch=ok", "hello from the host", "67108864"},
			contains: map[string][]string{
				"root=": {"root=1 ", "Read-only file system"},
				"data=": {"data=1 ", "Read-only file system"},
			},
		},
		{
			name: "exit-code",
			img:  shell("exit 3"),
			code: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			s, err := tt.p.Generate(tt.name, e.rootfs, tt.img, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(s)
			}
			code, out := e.run(tt.name, s)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.code, out)
			}
			lines := strings.Split(out, "\n")
			for _, want := range tt.want {
				if !slices.Contains(lines, want) {
					t.Errorf("output lacks the line %q:\n%s", want, out)
				}
			}
			for key, parts := range tt.contains {
				line := ""
				for _, l := range lines {
					if strings.HasPrefix(l, key) {
						line = l
					}
				}
				for _, p := range parts {
					if !strings.Contains(line, p) {
						t.Errorf("line %q lacks %q; output:\n%s", line, p, out)
					}
				}
			}
		})
	}
}
