package imagespec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/bundle"
)

func ptr[T any](v T) *T { return &v }

// loadAsBundle writes s into a bundle and loads it as the runtime does:
// troupe's bundle validation is not exported on its own.
func loadAsBundle(t *testing.T, s *specs.Spec) {
	t.Helper()
	dir := t.TempDir()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Load(dir); err != nil {
		t.Fatalf("the generated spec does not load as a bundle: %v", err)
	}
}

func TestGenerate(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	hostDir := t.TempDir()
	deniedDir := t.TempDir()
	img := Image{
		User:       "app",
		Env:        []string{"PATH=/app/bin:/bin", "LANG=C.UTF-8", "MODE=image"},
		Entrypoint: []string{"/entrypoint.sh"},
		Cmd:        []string{"serve", "--port", "80"},
		WorkingDir: "/srv",
		StopSignal: "SIGQUIT",
		Labels:     map[string]string{"org.criu.config": "/evil.conf"},
	}
	binds := Policy{AllowBinds: true, Denied: []string{deniedDir}}

	tests := []struct {
		name    string
		img     Image
		o       Overrides
		p       Policy
		check   func(t *testing.T, s *specs.Spec)
		wantErr string
		class   error
	}{
		{
			name: "the image as it is",
			img:  img,
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "args", s.Process.Args, []string{"/entrypoint.sh", "serve", "--port", "80"})
				eq(t, "env", s.Process.Env, []string{"PATH=/app/bin:/bin", "HOSTNAME=c1", "LANG=C.UTF-8", "MODE=image", "HOME=/home/app"})
				eq(t, "cwd", s.Process.Cwd, "/srv")
				eq(t, "user", s.Process.User, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 29}})
				eq(t, "hostname", s.Hostname, "c1")
				eq(t, "root", *s.Root, specs.Root{Path: root})
				eq(t, "caps", s.Process.Capabilities.Bounding, DefaultCapabilities())
				eq(t, "annotations", s.Annotations, map[string]string{StopSignalAnnotation: "SIGQUIT"})
				eq(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{wantNofile(t)})
				eq(t, "no_new_privileges", s.Process.NoNewPrivileges, true)
				eq(t, "terminal", s.Process.Terminal, false)
				if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow {
					t.Errorf("seccomp = %+v, want the default deny-list", s.Linux.Seccomp)
				}
				var dests []string
				for _, m := range s.Mounts {
					dests = append(dests, m.Destination)
				}
				eq(t, "mounts", dests, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"})
				var ns []specs.LinuxNamespaceType
				for _, n := range s.Linux.Namespaces {
					ns = append(ns, n.Type)
				}
				eq(t, "namespaces", ns, []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace})
				eq(t, "resources", *s.Linux.Resources, specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}})
			},
		},
		{
			name: "no PATH in the image",
			img:  Image{Cmd: []string{"true"}},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "env", s.Process.Env, []string{"PATH=" + DefaultPath, "HOSTNAME=c1", "HOME=/root"})
				eq(t, "cwd", s.Process.Cwd, "/")
				eq(t, "user", s.Process.User, specs.User{})
				eq(t, "annotations", s.Annotations, map[string]string(nil))
			},
		},
		{
			name: "overrides",
			img:  img,
			o: Overrides{
				Args: []string{"migrate"}, Env: []string{"MODE=request", "EXTRA=1", "HOME=/data", "HOSTNAME=mine"},
				Cwd: "/data/../tmp", User: "4242:4243", Hostname: "web-1.example", ReadOnlyRoot: true,
			},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "args", s.Process.Args, []string{"/entrypoint.sh", "migrate"})
				eq(t, "env", s.Process.Env, []string{"PATH=/app/bin:/bin", "HOSTNAME=mine", "LANG=C.UTF-8", "MODE=request", "EXTRA=1", "HOME=/data"})
				eq(t, "cwd", s.Process.Cwd, "/tmp")
				eq(t, "user", s.Process.User, specs.User{UID: 4242, GID: 4243})
				eq(t, "hostname", s.Hostname, "web-1.example")
				eq(t, "readonly", s.Root.Readonly, true)
			},
		},
		{
			name: "an entrypoint drops the image's cmd",
			img:  img,
			o:    Overrides{Entrypoint: &[]string{"/bin/sh"}},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "args", s.Process.Args, []string{"/bin/sh"})
			},
		},
		{
			name: "an empty entrypoint clears it",
			img:  img,
			o:    Overrides{Entrypoint: &[]string{}, Args: []string{"ls", "-l"}},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "args", s.Process.Args, []string{"ls", "-l"})
			},
		},
		{name: "no command", img: Image{}, wantErr: "image has no command and none was given", class: errclass.InvalidArgument},
		{name: "entrypoint cleared, no args", img: img, o: Overrides{Entrypoint: &[]string{}}, wantErr: "image has no command and none was given", class: errclass.InvalidArgument},
		{
			name: "a long id makes a hostname of 64 characters",
			img:  img,
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "hostname", s.Hostname, strings.Repeat("h", 64))
			},
		},
		{name: "bad hostname", img: img, o: Overrides{Hostname: "a/b"}, wantErr: "only letters", class: errclass.InvalidArgument},
		{name: "long hostname", img: img, o: Overrides{Hostname: strings.Repeat("a", 65)}, wantErr: "longer than 64", class: errclass.InvalidArgument},
		{name: "relative cwd", img: img, o: Overrides{Cwd: "data"}, wantErr: "must be an absolute path", class: errclass.InvalidArgument},
		{name: "env without =", img: img, o: Overrides{Env: []string{"FOO"}}, wantErr: "want KEY=value", class: errclass.InvalidArgument},
		{name: "unknown user", img: img, o: Overrides{User: "mallory"}, wantErr: `user "mallory" not found in the image's /etc/passwd`, class: errclass.InvalidArgument},
		{name: "privileged", img: img, o: Overrides{Privileged: true}, wantErr: "privileged containers are not supported", class: errclass.InvalidArgument},
		{
			name: "terminal",
			img:  img,
			o:    Overrides{Terminal: true},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "terminal", s.Process.Terminal, true)
				if !slices.Contains(s.Process.Env, "TERM=xterm") {
					t.Errorf("env %v lacks TERM=xterm", s.Process.Env)
				}
			},
		},
		{
			name: "resources",
			img:  img,
			o:    Overrides{Resources: Resources{Memory: 64 << 20, CPUShares: 512, CPUQuota: 50000, Pids: 100}},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				eq(t, "memory", *r.Memory.Limit, int64(64<<20))
				eq(t, "shares", *r.CPU.Shares, uint64(512))
				eq(t, "quota", *r.CPU.Quota, int64(50000))
				eq(t, "period", *r.CPU.Period, uint64(100000))
				eq(t, "pids", *r.Pids.Limit, int64(100))
			},
		},
		{name: "memory under the minimum", img: img, o: Overrides{Resources: Resources{Memory: 1 << 20}}, wantErr: "at least 6291456", class: errclass.InvalidArgument},
		{name: "cpu shares out of range", img: img, o: Overrides{Resources: Resources{CPUShares: 1}}, wantErr: "between 2 and 262144", class: errclass.InvalidArgument},
		{name: "cpu quota too small", img: img, o: Overrides{Resources: Resources{CPUQuota: 10}}, wantErr: "at least 1000", class: errclass.InvalidArgument},
		{name: "cpu period without quota", img: img, o: Overrides{Resources: Resources{CPUPeriod: 50000}}, wantErr: "without a cpuQuota", class: errclass.InvalidArgument},
		{name: "pids below -1", img: img, o: Overrides{Resources: Resources{Pids: -2}}, wantErr: "resources.pids", class: errclass.InvalidArgument},
		{
			name: "capabilities added and dropped",
			img:  img,
			o:    Overrides{CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"MKNOD", "cap_net_raw"}},
			check: func(t *testing.T, s *specs.Spec) {
				c := s.Process.Capabilities.Bounding
				for _, want := range []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_CHOWN"} {
					if !slices.Contains(c, want) {
						t.Errorf("caps %v lack %s", c, want)
					}
				}
				for _, gone := range []string{"CAP_MKNOD", "CAP_NET_RAW"} {
					if slices.Contains(c, gone) {
						t.Errorf("caps %v still have %s", c, gone)
					}
				}
				eq(t, "effective", s.Process.Capabilities.Effective, c)
				if denied(s.Linux.Seccomp, "clock_settime") {
					t.Errorf("CAP_SYS_TIME did not lift clock_settime")
				}
				if !denied(s.Linux.Seccomp, "mount") {
					t.Errorf("mount is not denied")
				}
			},
		},
		{
			name: "drop all, add one",
			img:  img,
			o:    Overrides{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "caps", s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"})
			},
		},
		{
			name: "add all but one",
			img:  img,
			o:    Overrides{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_MODULE"}},
			check: func(t *testing.T, s *specs.Spec) {
				c := s.Process.Capabilities.Bounding
				eq(t, "count", len(c), len(allCaps)-1)
				if slices.Contains(c, "CAP_SYS_MODULE") {
					t.Errorf("CAP_SYS_MODULE not dropped")
				}
				if denied(s.Linux.Seccomp, "mount") || !denied(s.Linux.Seccomp, "init_module") {
					t.Errorf("seccomp does not follow the capabilities: %+v", s.Linux.Seccomp.Syscalls)
				}
			},
		},
		{name: "unknown capability", img: img, o: Overrides{CapAdd: []string{"CAP_FLY"}}, wantErr: `capAdd[0] "CAP_FLY": unknown capability`, class: errclass.InvalidArgument},
		{name: "added and dropped", img: img, o: Overrides{CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"cap_net_admin"}}, wantErr: "both in capAdd and in capDrop", class: errclass.InvalidArgument},
		{
			name: "tmpfs mounts",
			img:  img,
			o: Overrides{Mounts: []Mount{
				{Type: Tmpfs, Destination: "/run/cache/", Size: 32 << 20, Mode: 0o700},
				{Type: Tmpfs, Destination: "/dev/shm", Size: 1 << 30, Exec: true},
			}},
			check: func(t *testing.T, s *specs.Spec) {
				m := mountAt(t, s, "/run/cache")
				eq(t, "cache", m, specs.Mount{Destination: "/run/cache", Type: "tmpfs", Source: "tmpfs",
					Options: []string{"nosuid", "nodev", "mode=700", "noexec", "size=33554432"}})
				m = mountAt(t, s, "/dev/shm")
				eq(t, "shm", m.Options, []string{"nosuid", "nodev", "mode=1777", "size=1073741824"})
				eq(t, "mount count", len(s.Mounts), 8)
			},
		},
		{name: "tmpfs on /", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "/"}}}, wantErr: "cannot mount over the root", class: errclass.InvalidArgument},
		{name: "tmpfs on /proc/sys", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "/proc/sys"}}}, wantErr: "/proc belongs to the runtime", class: errclass.InvalidArgument},
		{name: "tmpfs on /sys/../dev", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "/sys/../dev"}}}, wantErr: "/dev belongs to the runtime", class: errclass.InvalidArgument},
		{name: "relative destination", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "tmp"}}}, wantErr: "must be an absolute path", class: errclass.InvalidArgument},
		{name: "two on one place", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "/a"}, {Type: Tmpfs, Destination: "/a/"}}}, wantErr: "both on /a", class: errclass.InvalidArgument},
		{name: "tmpfs mode", img: img, o: Overrides{Mounts: []Mount{{Type: Tmpfs, Destination: "/a", Mode: 0o100755}}}, wantErr: "only permission bits", class: errclass.InvalidArgument},
		{name: "unknown type", img: img, o: Overrides{Mounts: []Mount{{Type: "overlay", Destination: "/a"}}}, wantErr: `type "overlay"`, class: errclass.InvalidArgument},
		{
			name:    "binds refused by default",
			img:     img,
			o:       Overrides{Mounts: []Mount{{Type: Bind, Destination: "/data", Source: hostDir}}},
			wantErr: "bind mounts of host paths are not allowed on this daemon", class: errclass.FailedPrecondition,
		},
		{
			name: "binds allowed",
			img:  img,
			p:    binds,
			o: Overrides{Mounts: []Mount{
				{Type: Bind, Destination: "/data", Source: hostDir},
				{Type: Bind, Destination: "/config", Source: hostDir, ReadOnly: true},
			}},
			check: func(t *testing.T, s *specs.Spec) {
				eq(t, "data", mountAt(t, s, "/data"), specs.Mount{Destination: "/data", Type: "bind", Source: hostDir,
					Options: []string{"rbind", "rprivate", "nosuid", "nodev"}})
				eq(t, "config", mountAt(t, s, "/config").Options, []string{"rbind", "rprivate", "nosuid", "nodev", "ro"})
			},
		},
		{name: "bind of /", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/host", Source: "/"}}}, wantErr: "binding the host's root", class: errclass.InvalidArgument},
		{name: "bind of /proc/1", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/p", Source: "/proc/1"}}}, wantErr: "binding /proc", class: errclass.InvalidArgument},
		{name: "bind of /sys", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/s", Source: "/sys/"}}}, wantErr: "binding /sys", class: errclass.InvalidArgument},
		{name: "bind of /dev", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: "/dev"}}}, wantErr: "binding /dev", class: errclass.InvalidArgument},
		{name: "bind of a denied dir", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: deniedDir}}}, wantErr: "is not allowed", class: errclass.InvalidArgument},
		{name: "bind above a denied dir", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: filepath.Dir(deniedDir)}}}, wantErr: "is not allowed", class: errclass.InvalidArgument},
		{name: "bind through a symlink to /", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: linkTo(t, "/")}}}, wantErr: "binding the host's root", class: errclass.InvalidArgument},
		{name: "bind of a missing path", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: filepath.Join(hostDir, "missing")}}}, wantErr: "no such file", class: errclass.InvalidArgument},
		{name: "bind of a relative path", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: "data"}}}, wantErr: "must be an absolute host path", class: errclass.InvalidArgument},
		{name: "bind with a size", img: img, p: binds, o: Overrides{Mounts: []Mount{{Type: Bind, Destination: "/d", Source: hostDir, Size: 1}}}, wantErr: "are a tmpfs's", class: errclass.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "c1"
			if strings.HasPrefix(tt.name, "a long id") {
				id = strings.Repeat("h", 100)
			}
			s, err := tt.p.Generate(id, root, tt.img, tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.class) {
					t.Fatalf("err = %v, want %v with %q", err, tt.class, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
			if !s.Process.Terminal {
				loadAsBundle(t, s)
			}
		})
	}
}

func TestGenerateRootfs(t *testing.T) {
	img := Image{Cmd: []string{"true"}}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ id, rootfs, wantErr string }{
		{"c1", "rootfs", "must be an absolute path"},
		{"c1", filepath.Join(t.TempDir(), "missing"), "no such file"},
		{"c1", file, "not a directory"},
		{"../c1", t.TempDir(), "invalid container id"},
		{"", t.TempDir(), "invalid container id"},
	} {
		if _, err := Generate(tt.id, tt.rootfs, img, Overrides{}); err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("Generate(%q, %q) = %v, want an invalid argument with %q", tt.id, tt.rootfs, err, tt.wantErr)
		}
	}
}

// A prepared container's spec names no host unless asked: the claim does.
func TestGeneratePrepared(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	img := Image{Cmd: []string{"true"}, Env: []string{"A=1"}}
	for _, tt := range []struct {
		hostname, wantHost string
		wantEnv            []string
	}{
		{"", "", []string{"PATH=" + DefaultPath, "A=1", "HOME=/root"}},
		{"given", "given", []string{"PATH=" + DefaultPath, "HOSTNAME=given", "A=1", "HOME=/root"}},
	} {
		s, err := Policy{}.GeneratePrepared(root, img, Overrides{Hostname: tt.hostname})
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "hostname", s.Hostname, tt.wantHost)
		eq(t, "env", s.Process.Env, tt.wantEnv)
		loadAsBundle(t, s)
	}
	eq(t, "HostnameOf a long id", HostnameOf(strings.Repeat("i", 70)), strings.Repeat("i", 64))
}

// wantNofile is the NOFILE limit of a container started by this process:
// 1024:524288, the hard limit lowered to this process's own.
func wantNofile(t *testing.T) specs.POSIXRlimit {
	t.Helper()
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err != nil {
		t.Fatal(err)
	}
	hard := min(own.Max, 524288)
	return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: min(1024, hard), Hard: hard}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func mountAt(t *testing.T, s *specs.Spec, dest string) specs.Mount {
	t.Helper()
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return m
		}
	}
	t.Fatalf("no mount on %s in %+v", dest, s.Mounts)
	return specs.Mount{}
}

func linkTo(t *testing.T, target string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// denied reports whether the profile refuses name without conditions.
func denied(s *specs.LinuxSeccomp, name string) bool {
	for _, r := range s.Syscalls {
		if len(r.Args) == 0 && r.Action == specs.ActErrno && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}
