package bench

import (
	"os"
	"testing"
)

func TestHasCgroup2Mount(t *testing.T) {
	mountinfo := []byte(`24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 33 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 24 0:31 / /mnt/with\040space rw - cgroup2 cgroup2 rw
`)
	for path, want := range map[string]bool{
		"/sys/fs/cgroup/unified": true,
		"/sys/fs/cgroup/memory":  false, // cgroup v1
		"/sys/fs/cgroup":         false, // tmpfs
		"/mnt/with space":        true,
		"/nowhere":               false,
	} {
		if got := hasCgroup2Mount(mountinfo, path); got != want {
			t.Errorf("hasCgroup2Mount(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestCrunStartsAndTearsDown(t *testing.T) {
	// crun must leave the host's mounts as they were: the cgroup2 mount it
	// cannot live with is hidden from it in a namespace of its own.
	unifiedBefore, err := isCgroup2Mount(cgroupRoot + "/unified")
	if err != nil {
		t.Fatal(err)
	}
	mountsBefore, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	testCompareTarget(t, "crun", "crun", "crun", noOverhead)
	unifiedAfter, err := isCgroup2Mount(cgroupRoot + "/unified")
	if err != nil {
		t.Fatal(err)
	}
	if unifiedBefore != unifiedAfter {
		t.Errorf("cgroup2 at %s/unified: mounted %v before the test, %v after", cgroupRoot, unifiedBefore, unifiedAfter)
	}
	if mountsAfter, err := os.ReadFile("/proc/self/mountinfo"); err != nil || string(mountsAfter) != string(mountsBefore) {
		// Other tests may mount meanwhile; say what changed.
		t.Logf("the host's mounts changed during the test (another test's?):\nbefore:\n%s\nafter:\n%s", mountsBefore, mountsAfter)
	}
}
