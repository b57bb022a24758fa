package linuxtest

import (
	"strings"
	"testing"

	"github.com/troupe-run/troupe/runtime/containerlog"
)

// Output is what a container's init wrote so far to its log at path,
// stdout and stderr together, a line per line it wrote.
func Output(t testing.TB, path string) string {
	t.Helper()
	var out strings.Builder
	err := containerlog.Read(path, containerlog.ReadOptions{}, func(l containerlog.Line) error {
		out.Write(l.Content)
		if !l.Partial {
			out.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the log %s: %v", path, err)
	}
	return out.String()
}
