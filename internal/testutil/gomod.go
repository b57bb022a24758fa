package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Required returns the version of module that the repository's go.mod
// requires, found from the test's directory upwards; it fails the test
// when go.mod names no such module.
func Required(t testing.TB, module string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for line := range strings.Lines(string(data)) {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == module {
					return f[1]
				}
			}
			t.Fatalf("%s requires no %s", filepath.Join(dir, "go.mod"), module)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
