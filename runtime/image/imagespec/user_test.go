package imagespec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
		"nohome:x:1001:1001::::\n"
	testGroup = "root:x:0:\n" +
		"app:x:1000:\n" +
		"extra:x:2000:app,nobody\n" +
		"audio:x:29:app\n" +
		"nogroup:x:65534:\n"
)

// fakeRootfs makes a directory with the files given (path relative to the
// root: content), and returns it.
func fakeRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// resolvers runs f once with openat2 and once with the walk of kernels
// without it: both must hold the same line.
func resolvers(t *testing.T, f func(t *testing.T, r resolver)) {
	t.Run("openat2", func(t *testing.T) { f(t, useOpenat2) })
	t.Run("walk", func(t *testing.T) { f(t, useWalk) })
}

func TestLookupUser(t *testing.T) {
	tests := []struct {
		spec    string
		want    execUser
		wantErr string
	}{
		{spec: "", want: execUser{uid: 0, gid: 0, home: "/root"}},
		{spec: "root", want: execUser{uid: 0, gid: 0, home: "/root"}},
		{spec: "app", want: execUser{uid: 1000, gid: 1000, sgids: []uint32{2000, 29}, home: "/home/app"}},
		{spec: "1000", want: execUser{uid: 1000, gid: 1000, sgids: []uint32{2000, 29}, home: "/home/app"}},
		{spec: "app:extra", want: execUser{uid: 1000, gid: 2000, home: "/home/app"}},
		{spec: "app:29", want: execUser{uid: 1000, gid: 29, home: "/home/app"}},
		{spec: "1000:5000", want: execUser{uid: 1000, gid: 5000, home: "/home/app"}},
		{spec: "nobody", want: execUser{uid: 65534, gid: 65534, sgids: []uint32{2000}, home: "/nonexistent"}},
		{spec: "nohome", want: execUser{uid: 1001, gid: 1001, home: "/"}},
		// Docker runs a uid that /etc/passwd does not know with gid 0.
		{spec: "4242", want: execUser{uid: 4242, gid: 0, home: "/"}},
		{spec: "4242:4243", want: execUser{uid: 4242, gid: 4243, home: "/"}},
		{spec: "ghost", wantErr: `user "ghost" not found in the image's /etc/passwd`},
		{spec: "app:ghosts", wantErr: `group "ghosts" not found in the image's /etc/group`},
		{spec: "app:", wantErr: "want name, uid"},
		{spec: ":app", wantErr: "want name, uid"},
		{spec: "a:b:c", wantErr: "want name, uid"},
		{spec: "-1", wantErr: "must be in range"},
	}
	root := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	resolvers(t, func(t *testing.T, r resolver) {
		for _, tt := range tests {
			t.Run(tt.spec, func(t *testing.T) {
				got, err := lookupUser(root, tt.spec, r)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errclass.InvalidArgument) {
						t.Fatalf("err = %v, want an invalid argument with %q", err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
			})
		}
	})
}

// TestLookupUserHostileRootfs gives the lookup images whose /etc/passwd tries
// to make the daemon read a host file, block, or read without end. The host
// file here says "evil" is uid 6666: finding that user means the host file
// was read.
func TestLookupUserHostileRootfs(t *testing.T) {
	hostDir := t.TempDir()
	hostPasswd := filepath.Join(hostDir, "passwd")
	if err := os.WriteFile(hostPasswd, []byte("evil:x:6666:6666::/evil:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// How many ".." climb from <root>/etc to the host's "/".
	up := strings.Repeat("../", strings.Count(t.TempDir(), "/")+2)

	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		spec  string
		// want is the user found, or wantErr the error.
		want    *execUser
		wantErr string
	}{
		{
			name:    "passwd is a symlink to an absolute host path",
			setup:   func(t *testing.T, root string) { symlink(t, hostPasswd, root, "etc/passwd") },
			spec:    "evil",
			wantErr: `user "evil" not found`,
		},
		{
			name:    "passwd climbs out with ..",
			setup:   func(t *testing.T, root string) { symlink(t, up+hostPasswd[1:], root, "etc/passwd") },
			spec:    "evil",
			wantErr: `user "evil" not found`,
		},
		{
			// Resolved inside the root, the same link finds the image's
			// own file: what the container would see.
			name: "an absolute symlink resolves inside the root",
			setup: func(t *testing.T, root string) {
				symlink(t, hostPasswd, root, "etc/passwd")
				write(t, root, hostPasswd[1:], "evil:x:7:7::/inside:/bin/sh\n")
			},
			spec: "evil",
			want: &execUser{uid: 7, gid: 7, home: "/inside"},
		},
		{
			name:    "etc is a symlink to a host directory",
			setup:   func(t *testing.T, root string) { symlink(t, hostDir, root, "etc") },
			spec:    "evil",
			wantErr: `user "evil" not found`,
		},
		{
			name:    "passwd is the root itself through ../../..",
			setup:   func(t *testing.T, root string) { symlink(t, "../../..", root, "etc/passwd") },
			spec:    "root",
			wantErr: "not a regular file",
		},
		{
			name:    "passwd is a directory",
			setup:   func(t *testing.T, root string) { mkdir(t, root, "etc/passwd") },
			spec:    "root",
			wantErr: "not a regular file",
		},
		{
			// /proc/self/root would be the daemon's root; inside the
			// image "/proc" is the image's own, here a loop.
			name: "passwd through /proc/self/root",
			setup: func(t *testing.T, root string) {
				symlink(t, "/proc/self/root/"+hostPasswd[1:], root, "etc/passwd")
				symlink(t, "/proc", root, "proc")
			},
			spec: "evil",
		},
		{
			name: "passwd is a FIFO without a writer",
			setup: func(t *testing.T, root string) {
				mkdir(t, root, "etc")
				if err := syscall.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			spec:    "root",
			wantErr: "not a regular file",
		},
		{
			name: "passwd is a device",
			setup: func(t *testing.T, root string) {
				mkdir(t, root, "etc")
				// /dev/zero would never end; it must not even be opened.
				if err := syscall.Mknod(filepath.Join(root, "etc/passwd"), syscall.S_IFCHR|0o644, int(1<<8|5)); err != nil {
					t.Skipf("mknod: %v", err)
				}
			},
			spec:    "root",
			wantErr: "not a regular file",
		},
		{
			name: "passwd over 1 MiB",
			setup: func(t *testing.T, root string) {
				write(t, root, "etc/passwd", strings.Repeat("# padding padding padding padding padding padding\n", maxEtcFileSize/50+1)+"root:x:0:0::/root:/bin/sh\n")
			},
			spec:    "root",
			wantErr: "larger than 1048576 bytes",
		},
		{
			name:    "a line longer than a scanner takes",
			setup:   func(t *testing.T, root string) { write(t, root, "etc/passwd", strings.Repeat("a", 70000)+"\n") },
			spec:    "root",
			wantErr: "longer than",
		},
		{
			name:    "uid -1 in passwd",
			setup:   func(t *testing.T, root string) { write(t, root, "etc/passwd", "minus:x:4294967295:0::/:/bin/sh\n") },
			spec:    "minus",
			wantErr: "must be between 0 and 4294967294",
		},
		{
			name:  "no etc at all, numeric user",
			setup: func(t *testing.T, root string) {},
			spec:  "1234:5678",
			want:  &execUser{uid: 1234, gid: 5678, home: "/"},
		},
		{
			name:    "etc is a file",
			setup:   func(t *testing.T, root string) { write(t, root, "etc", "not a directory") },
			spec:    "root",
			wantErr: `user "root" not found`,
		},
	}
	resolvers(t, func(t *testing.T, r resolver) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				root := t.TempDir()
				tt.setup(t, root)
				start := time.Now()
				got, err := lookupUser(root, tt.spec, r)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("lookup took %v", d)
				}
				switch {
				case tt.wantErr != "":
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errclass.InvalidArgument) {
						t.Fatalf("err = %v (user %+v), want an invalid argument with %q", err, got, tt.wantErr)
					}
				case tt.want != nil:
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, *tt.want) {
						t.Errorf("got %+v, want %+v", got, *tt.want)
					}
				default:
					// Any refusal will do, but never the host's user.
					if err == nil {
						t.Errorf("found %+v, want an error", got)
					}
				}
			})
		}
	})
}

func symlink(t *testing.T, target, root, name string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, root, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
