package main

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloseInheritedOnExec(t *testing.T) {
	// As a descriptor a daemon inherits: opened without O_CLOEXEC.
	fd, err := unix.Open(filepath.Join(t.TempDir(), "inherited"), unix.O_CREAT|unix.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatal("the test's descriptor is close-on-exec already")
	}
	if err := closeInheritedOnExec(); err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("flags %#x, %v: want close-on-exec", flags, err)
	}
}
