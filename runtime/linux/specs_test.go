package linux

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// A container's configuration made from its bundle's shared one is the
// configuration converted for it alone.
func TestConfigForEqualsFreshConversion(t *testing.T) {
	e := newEnv(t)
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	bundles := []struct {
		name string
		o    busybox.Options
	}{
		{"plain", busybox.Options{}},
		{"limits", busybox.Options{MemoryLimit: 64 << 20, PidsLimit: 50}},
		{"read-only", busybox.Options{ReadOnly: true}},
		{"seccomp", busybox.Options{Seccomp: profile}},
		{"userns", busybox.Options{ReadOnly: true,
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}}},
	}
	for _, tc := range bundles {
		t.Run(tc.name, func(t *testing.T) {
			p := e.bundle(tc.name, tc.o)
			b, base, err := e.rt.specs.load(p, func(b *bundle.Bundle) (*configs.Config, error) { return e.rt.config("first", b) })
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"first", "second"} {
				fresh, err := e.rt.config(id, b)
				if err != nil {
					t.Fatal(err)
				}
				if got := e.rt.configFor(id, base); !reflect.DeepEqual(got, fresh) {
					g, _ := json.MarshalIndent(got, "", " ")
					f, _ := json.MarshalIndent(fresh, "", " ")
					t.Errorf("%s: shared configuration differs from a fresh one:\n%s", id, lineDiff(string(g), string(f)))
				}
			}
			if a, b := e.rt.configFor("a", base), e.rt.configFor("b", base); a.Cgroups == b.Cgroups || a.Cgroups.Path == b.Cgroups.Path {
				t.Error("two containers share their cgroup configuration")
			}
		})
	}
}

func TestSpecCache(t *testing.T) {
	e := newEnv(t)
	p := e.bundle("cached", busybox.Options{ReadOnly: true}) // a rootfs of its own
	converted := 0
	load := func() (*configs.Config, error) {
		_, base, err := e.rt.specs.load(p, func(b *bundle.Bundle) (*configs.Config, error) {
			converted++
			return e.rt.config("x", b)
		})
		return base, err
	}
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := load(); again != first || converted != 1 {
		t.Errorf("second load converted again (%d conversions)", converted)
	}
	// A changed config.json is read again.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(p, "config.json"), later, later); err != nil {
		t.Fatal(err)
	}
	if again, _ := load(); again == first || converted != 2 {
		t.Errorf("a changed bundle was not read again (%d conversions)", converted)
	}
	// A rootfs gone since is reported as bundle.Load reports it.
	rootfs := filepath.Join(p, "rootfs")
	if err := os.Rename(rootfs, rootfs+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := load(); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("load without a rootfs: %v, want invalid argument", err)
	}
	if err := os.Rename(rootfs+".away", rootfs); err != nil {
		t.Fatal(err)
	}
	// Containers started from the cached configuration run, each in its own
	// cgroup.
	for _, id := range []string{"c1", "c2"} {
		c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
		if dirs := cgroupDirs(t, filepath.Join(e.parent, id)); len(dirs) == 0 {
			t.Errorf("%s has no cgroup of its own", id)
		}
	}
}

// lineDiff lists the lines of got and want that differ, position by position.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			out = append(out, "got  "+a, "want "+b)
		}
		if len(out) > 20 {
			break
		}
	}
	if len(out) == 0 {
		return "(same JSON: the difference is in fields JSON leaves out)"
	}
	return strings.Join(out, "\n")
}
