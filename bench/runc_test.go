package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestOCICLIArgv(t *testing.T) {
	runc := newRunc()
	runc.binary, runc.dir = "/usr/sbin/runc", "/tmp/w"
	crun := newCrun()
	crun.binary, crun.dir = "/usr/bin/crun", "/tmp/v"
	crun.prefix = []string{"/usr/bin/nsenter", "--target", "42", "--mount"}
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"runc run", runc.argv("run", "--detach", "--bundle", "/tmp/w/bundles/c1", "c1"),
			"/usr/sbin/runc --root /tmp/w/state run --detach --bundle /tmp/w/bundles/c1 c1"},
		{"runc kill", runc.argv("kill", "c1", "KILL"), "/usr/sbin/runc --root /tmp/w/state kill c1 KILL"},
		{"runc delete", runc.argv("delete", "--force", "c1"), "/usr/sbin/runc --root /tmp/w/state delete --force c1"},
		{"crun run in the helper's namespace", crun.argv("run", "--detach", "--bundle", "/tmp/v/bundles/c1", "c1"),
			"/usr/bin/nsenter --target 42 --mount /usr/bin/crun --root /tmp/v/state run --detach --bundle /tmp/v/bundles/c1 c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.got, " "); got != tc.want {
				t.Errorf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	// argv must not share its prefix's backing array: concurrent Starts
	// build their command lines from the same prefix.
	a := crun.argv("x")
	b := crun.argv("y")
	if a[len(a)-1] != "x" || b[len(b)-1] != "y" || !slices.Equal(crun.prefix, []string{"/usr/bin/nsenter", "--target", "42", "--mount"}) {
		t.Errorf("argv calls interfere: %v %v prefix %v", a, b, crun.prefix)
	}
}

func TestOCICLINames(t *testing.T) {
	for _, tc := range []struct {
		target            *ociCLI
		name, parent, ver string
	}{
		{newRunc(), "runc", "/troupe-bench-runc", ""},
		{newCrun().ociCLI, "crun", "/troupe-bench-crun", "1.0.2"},
	} {
		if tc.target.Name() != tc.name || tc.target.cgroupParent != tc.parent || tc.target.ociVersion != tc.ver {
			t.Errorf("%s: name %q, cgroup parent %q, ociVersion %q", tc.name, tc.target.Name(), tc.target.cgroupParent, tc.target.ociVersion)
		}
	}
}

func TestIsNotExist(t *testing.T) {
	for msg, want := range map[string]bool{
		"runc delete --force c1: exit status 1: container does not exist":                                      true,
		"crun delete --force c1: exit status 1: error opening file `/x/c1/status`: No such file or directory":  true,
		`ctr tasks delete --force c1: exit status 1: ctr: no running task found: task c1 not found: not found`: true,
		"runc delete --force c1: exit status 1: permission denied":                                             false,
	} {
		if got := isNotExist(errorString(msg)); got != want {
			t.Errorf("isNotExist(%q) = %v, want %v", msg, got, want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestRuncStartsAndTearsDown(t *testing.T) {
	testCompareTarget(t, "runc", "runc", "runc", noOverhead)
}
