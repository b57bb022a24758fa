package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/runtime"
)

func TestSetupCriuNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old", "criu")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	// A criu that reports a version too old for this kernel.
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'Version: 3.17.1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	misnamed := filepath.Join(dir, "criu-4.1")
	if err := os.WriteFile(misnamed, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", os.Getenv("PATH")) // setupCriu changes PATH; restore it
	tests := []struct {
		name, path, inErr string
	}{
		{"missing", filepath.Join(dir, "nowhere", "criu"), "no criu"},
		{"too old", old, "3.17"},
		{"misnamed", misnamed, "must be named criu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := setupCriu(tc.path)
			if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("setupCriu(%s) = %v; want unavailable naming %q", tc.path, err, tc.inErr)
			}
		})
	}
}
