package linux

import (
	"sync"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
)

// prepareCgroupParent makes the cgroup parent in every v1 hierarchy and
// runs the cgroup library's setting code on it once, with nothing to set.
// The library (opencontainers/cgroups v0.1.0, fs) detects the blkio weight
// file names on the first Set and stores them in a package-level value
// without a lock: the first starts, made concurrently, race on it (the race
// detector reports it; the value they write is the same). Doing it once
// here, before any start, leaves nothing to race on. Best effort: a failure
// only leaves the race as it was.
//
// Two runtimes made at once in one process (tests do) would race on it in
// the same way: the Set runs once per process, under blkioDetection. That
// guards the library's package-level value, so it is package-level too.
func prepareCgroupParent(parent string) {
	if cgroups.IsCgroup2UnifiedMode() {
		return
	}
	none := &cgroups.Resources{SkipDevices: true}
	m, err := fs.NewManager(&cgroups.Cgroup{Path: parent, Resources: none}, nil)
	if err != nil {
		return
	}
	if err := m.Apply(-1); err != nil {
		return
	}
	blkioDetection.Do(func() { _ = m.Set(none) })
}

var blkioDetection sync.Once
